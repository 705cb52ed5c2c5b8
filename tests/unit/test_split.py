"""Unit tests for pipeline/stages/split.py: fractions, stratification and leak-free placement."""

import re

import numpy as np
import pandas as pd
import pytest

from pipeline.common.columns import DUPLICATE_KEY, EXAMPLE_ID, SPLIT
from pipeline.errors import DataError
from pipeline.stages.split import SplitConfig, leakage_checks, split


def _table(n: int, *, seed: int = 0, classes=("a", "b", "c"), shares=(0.6, 0.3, 0.1), **extra) -> pd.DataFrame:
    """A validated table: unique ids, unique duplicate keys unless extra columns say otherwise."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            EXAMPLE_ID: [f"e{i:05d}" for i in range(n)],
            DUPLICATE_KEY: [f"k{i:05d}" for i in range(n)],
            "y": rng.choice(list(classes), size=n, p=list(shares)),
        }
    )
    for name, values in extra.items():
        table[name] = values
    return table


def _splits(table, manifest) -> pd.Series:
    assert manifest[EXAMPLE_ID].tolist() == table[EXAMPLE_ID].tolist()  # the table's row order
    return pd.Series(manifest[SPLIT].to_numpy(), index=table.index)


def test_fractions_are_roughly_honoured():
    table = _table(1000)
    manifest, checks = split(table, label="y", task="classification", config=SplitConfig(0.1, 0.2, seed=1))
    shares = _splits(table, manifest).value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.7, abs=0.02)
    assert shares["validation"] == pytest.approx(0.1, abs=0.02)
    assert shares["test"] == pytest.approx(0.2, abs=0.02)
    assert checks["rows"] == _splits(table, manifest).value_counts().to_dict()
    assert sum(checks["rows"].values()) == 1000
    assert set(checks["rows"]) == {"train", "validation", "test"}


def test_classification_split_is_stratified():
    table = _table(1000, seed=3)
    manifest, checks = split(table, label="y", task="classification", config=SplitConfig(0.1, 0.2))
    splits = _splits(table, manifest)
    overall = table["y"].value_counts(normalize=True)
    for name in ("train", "validation", "test"):
        share = table["y"][splits == name].value_counts(normalize=True)
        for label in overall.index:
            assert share[label] == pytest.approx(overall[label], abs=0.03), (name, label)
    assert checks["every_class_in_train"] == {"passed": True, "missing": []}
    counts = checks["class_counts"]
    assert set(counts) == {"a", "b", "c"}
    assert sum(counts["c"].values()) == (table["y"] == "c").sum()


def test_regression_split_has_no_class_checks():
    table = _table(100)
    table["y"] = np.linspace(0, 1, 100)
    manifest, checks = split(table, label="y", task="regression", config=SplitConfig())
    assert "class_counts" not in checks and "every_class_in_train" not in checks
    assert checks["rows"]["test"] == 20


def test_exact_duplicates_never_straddle_splits():
    # 300 distinct examples, each repeated 1 to 6 times.
    rng = np.random.default_rng(7)
    repeats = rng.integers(1, 7, size=300)
    keys = np.repeat([f"k{i}" for i in range(300)], repeats)
    table = _table(len(keys), seed=7)
    table[DUPLICATE_KEY] = keys
    manifest, checks = split(table, label="y", task="classification", config=SplitConfig())
    per_key = _splits(table, manifest).groupby(table[DUPLICATE_KEY]).nunique()
    assert (per_key == 1).all()
    assert checks["duplicates_within_one_split"] == {"passed": True, "straddling": [], "count": 0}
    assert 0.1 < (manifest[SPLIT] == "test").mean() < 0.3


def test_group_column_keeps_each_group_in_one_split():
    n = 600
    rng = np.random.default_rng(11)
    groups = [f"patient-{g}" for g in rng.integers(0, 80, size=n)]
    table = _table(n, seed=11, patient=groups)
    manifest, checks = split(table, label="y", task="classification", config=SplitConfig(), group_column="patient")
    per_group = _splits(table, manifest).groupby(table["patient"]).nunique()
    assert (per_group == 1).all()
    assert checks["groups_within_one_split"]["passed"] is True
    assert set(manifest[SPLIT]) == {"train", "validation", "test"}


def test_groups_and_duplicates_are_joined_transitively():
    # Row 0 and 1 share a group, row 1 and 2 are duplicates: all three must stay together.
    n = 60
    table = _table(n, seed=2, patient=[f"p{i}" for i in range(n)])
    table.loc[1, "patient"] = "p0"
    table.loc[2, DUPLICATE_KEY] = table.loc[1, DUPLICATE_KEY]
    for seed in range(5):
        manifest, _ = split(
            table, label="y", task="classification", config=SplitConfig(seed=seed), group_column="patient"
        )
        assert manifest[SPLIT].iloc[0] == manifest[SPLIT].iloc[1] == manifest[SPLIT].iloc[2]


def test_time_column_puts_oldest_rows_in_train_and_newest_in_test():
    n = 200
    days = pd.date_range("2024-01-01", periods=n, freq="D")
    order = np.random.default_rng(5).permutation(n)  # rows not in time order
    table = _table(n, seed=5, when=[str(days[i].date()) for i in order])
    manifest, checks = split(table, label="y", task="classification", config=SplitConfig(0.1, 0.2), time_column="when")
    splits = _splits(table, manifest)
    times = pd.to_datetime(table["when"])
    assert times[splits == "train"].max() < times[splits == "validation"].min()
    assert times[splits == "validation"].max() < times[splits == "test"].min()
    assert checks["rows"]["test"] == 40
    assert checks["rows"]["train"] == pytest.approx(140, abs=1)
    assert checks["time_order"]["passed"] is True
    assert checks["time_order"]["train_last"].startswith(str(times[splits == "train"].max().date()))


def test_time_split_sizes_match_the_fractions_exactly():
    table = _table(200, when=[str(t) for t in range(200)])
    _, checks = split(table, label="y", task="classification", config=SplitConfig(0.1, 0.2), time_column="when")
    assert checks["rows"] == {"train": 140, "validation": 20, "test": 40}


def test_numeric_time_column():
    table = _table(50, when=[str(t) for t in range(50, 0, -1)])  # newest first
    manifest, checks = split(table, label="y", task="regression", config=SplitConfig(0.2, 0.2), time_column="when")
    splits = _splits(table, manifest)
    assert set(splits.iloc[:10]) == {"test"} and set(splits.iloc[-30:]) == {"train"}
    assert checks["time_order"]["passed"] is True


def test_unparseable_time_is_a_data_error():
    table = _table(10, when=["2024-01-01"] * 9 + ["yesterday"])
    with pytest.raises(DataError, match="time column 'when'"):
        split(table, label="y", task="classification", config=SplitConfig(), time_column="when")


def test_a_class_with_one_example_lands_in_train():
    table = _table(100, classes=("a", "b"), shares=(0.5, 0.5))
    table.loc[37, "y"] = "rare"
    for seed in range(5):
        manifest, checks = split(table, label="y", task="classification", config=SplitConfig(seed=seed))
        assert manifest[SPLIT].iloc[37] == "train"
        assert checks["every_class_in_train"]["passed"] is True
        assert checks["class_counts"]["rare"] == {"train": 1, "validation": 0, "test": 0}


def test_a_rare_class_of_exact_duplicates_lands_in_train():
    table = _table(100, classes=("a", "b"), shares=(0.5, 0.5))
    table.loc[[10, 20, 30], "y"] = "rare"
    table.loc[[10, 20, 30], DUPLICATE_KEY] = "same-example"
    manifest, checks = split(table, label="y", task="classification", config=SplitConfig())
    assert set(manifest[SPLIT].iloc[[10, 20, 30]]) == {"train"}
    assert checks["every_class_in_train"]["passed"] is True


def test_rows_without_a_group_are_not_one_group():
    n = 200
    groups = [f"g{i // 4}" if i % 2 else None for i in range(n)]
    table = _table(n, seed=4, patient=groups)
    manifest, checks = split(table, label="y", task="classification", config=SplitConfig(), group_column="patient")
    ungrouped = _splits(table, manifest)[table["patient"].isna()]
    assert ungrouped.nunique() == 3
    assert checks["rows"]["test"] == pytest.approx(40, abs=10)


@pytest.mark.parametrize("validation, test", [(-0.1, 0.2), (0.1, 0.0), (0.1, 1.0), (0.5, 0.5), (1.0, 0.1)])
def test_split_config_rejects_bad_fractions(validation, test):
    with pytest.raises(ValueError, match="split fractions"):
        SplitConfig(validation_fraction=validation, test_fraction=test)


def test_split_config_allows_no_validation_split():
    table = _table(100)
    manifest, checks = split(table, label="y", task="classification", config=SplitConfig(0.0, 0.2))
    assert checks["rows"]["validation"] == 0


@pytest.mark.parametrize("n", [0, 1, 2])
def test_fewer_than_three_rows_is_a_data_error(n):
    with pytest.raises(DataError, match=f"only {n} usable rows"):
        split(_table(n), label="y", task="classification", config=SplitConfig())


def test_split_is_deterministic_for_a_seed():
    table = _table(300)
    first, _ = split(table, label="y", task="classification", config=SplitConfig(seed=9))
    again, _ = split(table, label="y", task="classification", config=SplitConfig(seed=9))
    other, _ = split(table, label="y", task="classification", config=SplitConfig(seed=10))
    pd.testing.assert_frame_equal(first, again)
    assert not first[SPLIT].equals(other[SPLIT])


def test_leakage_checks_detect_straddling_duplicates_and_groups():
    table = _table(4, patient=["p1", "p1", "p2", "p3"])
    table[DUPLICATE_KEY] = ["k1", "k2", "k2", "k3"]
    checks = leakage_checks(
        table, ["train", "test", "train", "validation"], label="y", task="classification", group_column="patient"
    )
    assert checks["duplicates_within_one_split"] == {"passed": False, "straddling": ["k2"], "count": 1}
    assert checks["groups_within_one_split"]["straddling"] == ["p1"]
    assert checks["rows"] == {"train": 2, "validation": 1, "test": 1}


def test_leakage_checks_detect_a_class_missing_from_train_and_time_going_backwards():
    table = _table(3, when=["3", "1", "2"])
    table["y"] = ["a", "b", "a"]
    checks = leakage_checks(
        table, ["train", "test", "validation"], label="y", task="classification", time_column="when"
    )
    assert checks["every_class_in_train"] == {"passed": False, "missing": ["b"]}
    assert checks["time_order"]["passed"] is False


def _rows_named(message: str) -> list[int]:
    """The row numbers a 'rows [...] are not dates or numbers' message names."""
    listed = re.search(r"rows \[(.*)\] are not", message.replace("np.int64(", "").replace(")", ""))
    assert listed, message
    return [int(number) for number in re.findall(r"\d+", listed.group(1))]


def test_bad_time_error_names_the_source_file_and_row():
    table = _table(6, when=["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "soon", "2024-01-06"])
    table["_source_file"] = "events.csv"
    table["_source_row"] = [1, 3, 4, 5, 7, 8]  # rows 2 and 6 were rejected by validation
    with pytest.raises(DataError, match=r"events\.csv") as error:
        split(table, label="y", task="classification", config=SplitConfig(), time_column="when")
    assert _rows_named(str(error.value)) == [7]


def test_bad_time_error_lists_plain_row_numbers():
    table = _table(6, when=["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "soon", "2024-01-06"])
    with pytest.raises(DataError, match=r"time column 'when': rows \[5\] are not dates or numbers"):
        split(table, label="y", task="classification", config=SplitConfig(), time_column="when")


def test_numeric_time_with_one_typo_names_only_that_row():
    table = _table(6, when=["1", "2", "3", "4", "soon", "6"])
    with pytest.raises(DataError, match="time column 'when'") as error:
        split(table, label="y", task="classification", config=SplitConfig(), time_column="when")
    assert _rows_named(str(error.value)) == [5]


def test_split_does_not_mutate_its_input():
    table = _table(50, patient=[f"p{i % 7}" for i in range(50)])
    before = table.copy(deep=True)
    split(table, label="y", task="classification", config=SplitConfig(), group_column="patient")
    pd.testing.assert_frame_equal(table, before)


def test_a_held_out_split_too_small_for_any_row_says_why():
    table = _table(6, classes=("a", "b", "c"), shares=(1 / 3, 1 / 3, 1 / 3))
    with pytest.raises(DataError, match=r"validation has no rows although validation_fraction = 0.05: 0.05 of 6 rows"):
        split(table, label="y", task="classification", config=SplitConfig(0.05, 0.05, seed=1))
    together = _table(20, classes=("a",), shares=(1.0,)).assign(**{DUPLICATE_KEY: ["k1"] * 19 + ["k2"]})
    with pytest.raises(DataError, match="in 2 units .* the largest has 19 rows"):
        split(together, label="y", task="classification", config=SplitConfig(0.2, 0.2, seed=1))
