"""Unit tests for pipeline/stages/validation.py: typing, row rejects, problems reported all at once."""

import numpy as np
import pandas as pd
import pytest

from pipeline.common.columns import DUPLICATE_KEY, EXAMPLE_ID, REASON, SOURCE_FILE, SOURCE_ROW
from pipeline.errors import DataError
from pipeline.stages.raw import read_raw
from pipeline.stages.schema import Schema
from pipeline.stages.validation import Problem, validate

NUMERIC_SCHEMA = Schema(label="species", task="classification", kinds={"mass": "numeric", "island": "categorical"})


def _table(columns: dict, file="data.csv") -> pd.DataFrame:
    """A table as the raw stage reads it: text values plus source file and row."""
    table = pd.DataFrame(columns)
    table[SOURCE_FILE] = file
    table[SOURCE_ROW] = range(1, len(table) + 1)
    return table


def _problem(result, column, expected) -> Problem:
    found = [p for p in result.problems if p.column == column and p.expected == expected]
    assert len(found) == 1, [p.line() for p in result.problems]
    return found[0]


@pytest.fixture
def messy_csv(tmp_path, csv_file, png):
    """Six rows: 1, 5, 6 valid; 2 has a word for a number, 3 an infinity, 4 no label, 5 misses its image."""
    good = png(tmp_path / "img" / "good.png")
    missing = tmp_path / "img" / "missing.png"
    return csv_file(
        "penguins.csv",
        "mass,photo,species\n"
        f"3750,{good},Adelie\n"
        f"heavy,{good},Gentoo\n"
        f"inf,{good},Adelie\n"
        f"4000,{good},\n"
        f"4100,{missing},Gentoo\n"
        f"3900.5,{good},Gentoo\n",
    )


MESSY_SCHEMA = Schema(label="species", task="classification", kinds={"mass": "numeric", "photo": "image"})


def test_bad_rows_are_rejected_with_reasons_naming_the_column(messy_csv):
    result = validate(read_raw(messy_csv, "species"), MESSY_SCHEMA)
    assert result.rejects[SOURCE_ROW].tolist() == [2, 3, 4, 5]
    assert result.rejects[REASON].tolist() == [
        "mass: expected a number",
        "mass: expected a finite number",
        "species: expected a label",
        "photo: expected an existing image file",
    ]
    # Rejected rows are kept as read, so a person sees the original text.
    assert result.rejects["mass"].tolist() == ["heavy", "inf", "4000", "4100"]


def test_valid_rows_are_kept_with_typed_columns(messy_csv):
    result = validate(read_raw(messy_csv, "species"), MESSY_SCHEMA)
    valid = result.valid
    assert valid[SOURCE_ROW].tolist() == [1, 6]
    assert valid["mass"].dtype == np.float64
    assert valid["mass"].tolist() == [3750.0, 3900.5]
    assert valid["species"].tolist() == ["Adelie", "Gentoo"]
    assert {EXAMPLE_ID, DUPLICATE_KEY, SOURCE_FILE, SOURCE_ROW} <= set(valid.columns)
    assert list(valid.index) == [0, 1]
    report = result.report()
    assert (report["rows_in"], report["rows_valid"], report["rows_rejected"]) == (6, 2, 4)


def test_every_problem_is_reported_at_once_with_file_column_rows_and_expectation(messy_csv):
    result = validate(read_raw(messy_csv, "species"), MESSY_SCHEMA)
    lines = sorted(problem.line() for problem in result.problems)
    assert len(lines) == 4  # three columns, four kinds of problem, one call
    word = _problem(result, "mass", "a number")
    assert word.rows == (2,)
    assert word.line() == f"{messy_csv}: column 'mass', rows 2: expected a number, found 'heavy'"
    assert _problem(result, "mass", "a finite number").rows == (3,)
    label = _problem(result, "species", "a label")
    assert label.line() == f"{messy_csv}: column 'species', rows 4: expected a label, found missing"
    image = _problem(result, "photo", "an existing image file")
    assert image.rows == (5,)
    # The found value is the path as written, cut to 60 characters.
    assert f"found {str(messy_csv.parent / 'img' / 'missing.png')[:60]!r}" in image.line()
    assert all(problem.rejects_rows for problem in result.problems)


def test_problem_groups_rows_and_shortens_long_lists():
    table = _table({"mass": ["x"] * 12 + ["1"], "island": ["a"] * 13, "species": ["s"] * 13})
    result = validate(table, NUMERIC_SCHEMA)
    problem = _problem(result, "mass", "a number")
    assert problem.rows == tuple(range(1, 13))
    assert problem.line() == (
        "data.csv: column 'mass', rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 (+2 more): expected a number, found 'x'"
    )
    assert problem.as_dict()["count"] == 12


def test_problems_are_reported_per_file():
    table = pd.concat(
        [
            _table({"mass": ["x", "1"], "island": ["a", "b"], "species": ["s", "t"]}, "one.csv"),
            _table({"mass": ["2", "y"], "island": ["a", "b"], "species": ["s", "t"]}, "two.csv"),
        ],
        ignore_index=True,
    )
    result = validate(table, NUMERIC_SCHEMA)
    lines = sorted(p.line() for p in result.problems if p.rejects_rows)
    assert lines == [
        "one.csv: column 'mass', rows 1: expected a number, found 'x'",
        "two.csv: column 'mass', rows 2: expected a number, found 'y'",
    ]


def test_a_row_with_two_problems_gets_both_reasons():
    schema = Schema(label="species", task="classification", kinds={"mass": "numeric", "depth": "numeric"})
    table = _table({"mass": ["x", "1"], "depth": ["y", "2"], "species": ["s", "t"]})
    result = validate(table, schema)
    assert result.rejects[REASON].tolist() == ["mass: expected a number; depth: expected a number"]


def test_unreadable_image_is_rejected(tmp_path, png):
    good = png(tmp_path / "good.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    schema = Schema(label="y", task="classification", kinds={"photo": "image"})
    result = validate(_table({"photo": [str(good), str(broken)], "y": ["a", "b"]}), schema)
    assert result.rejects[REASON].tolist() == ["photo: expected a readable image"]


def test_devices_fifos_and_huge_files_are_rejected_as_images_without_a_read(tmp_path, png):
    import os
    import signal

    good, fifo, huge = png(tmp_path / "good.png"), tmp_path / "pipe.png", tmp_path / "huge.png"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    huge.write_bytes(b"\0" * 2048)
    schema = Schema(label="y", task="classification", kinds={"photo": "image"})
    paths = [str(good), "/dev/zero", str(fifo), str(huge)]
    signal.alarm(30)  # a read of /dev/zero or the FIFO would hang the test, not fail it
    try:
        result = validate(_table({"photo": paths, "y": ["a", "b", "c", "d"]}), schema, max_image_bytes=1024)
    finally:
        signal.alarm(0)
    assert result.valid["photo"].tolist() == [str(good)]
    assert result.rejects[REASON].tolist() == [
        "photo: expected a regular file (not a device, FIFO or socket)",
        "photo: expected a regular file (not a device, FIFO or socket)",
        "photo: expected an image file of at most 1 KB",
    ]


def test_the_image_file_limit_in_force_is_the_one_a_reason_names(tmp_path, png):
    """`[FitPreprocessor] max_image_bytes` reaches here (tests/tasks/test_versions.py); 256 MB unless set."""
    small, large = png(tmp_path / "small.png"), tmp_path / "large.png"
    large.write_bytes(small.read_bytes() + b"\0" * 4096)  # a PNG with trailing bytes: readable, 4 KB more
    schema = Schema(label="y", task="classification", kinds={"photo": "image"})
    table = _table({"photo": [str(small), str(large)], "y": ["a", "b"]})
    assert validate(table, schema).rejects.empty  # the default: both far below it
    size = small.stat().st_size
    limited = validate(table, schema, max_image_bytes=size)
    assert limited.valid["photo"].tolist() == [str(small)]
    assert limited.rejects[REASON].tolist() == [f"photo: expected an image file of at most {size} bytes"]


def test_images_come_from_anywhere_unless_image_root_confines_them(tmp_path, png):
    """Without `[dataset] image_root` any readable image is read (the documented reach); with it,
    an absolute path, a `../` path and a link out of the folder are rejected unread."""
    import os

    root, elsewhere = tmp_path / "dataset", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    inside, outside = png(root / "inside.png"), png(elsewhere / "secret.png")
    link = root / "link.png"
    os.symlink(outside, link)  # looks like the data set's, is not
    paths = [str(inside), str(outside), str(root / ".." / "elsewhere" / "secret.png"), str(link)]
    schema = Schema(label="y", task="classification", kinds={"photo": "image"})
    table = _table({"photo": paths, "y": ["a", "b", "c", "d"]})
    assert validate(table, schema).valid["photo"].tolist() == paths
    confined = validate(table, schema, image_root=str(root))
    assert confined.valid["photo"].tolist() == [str(inside)]
    assert confined.rejects[REASON].tolist() == [f"photo: expected an image inside {root}"] * 3


def test_a_fifo_in_a_night_folder_is_named_not_read(tmp_path):
    import os

    from pipeline.stages.data_files import batch_files, night_listing

    (tmp_path / "night.csv").write_text("a\n1\n")
    os.mkfifo(tmp_path / "more.csv")
    assert batch_files(tmp_path) == [tmp_path / "night.csv"]  # refused, never opened: scoring quarantines it
    assert night_listing(tmp_path).refused == [(tmp_path / "more.csv", "not a regular file (a device, FIFO or socket)")]


def test_regression_label_must_be_a_number():
    schema = Schema(label="price", task="regression", kinds={"mass": "numeric"})
    result = validate(_table({"mass": ["1", "2", "3"], "price": ["10.5", "cheap", None]}), schema)
    assert result.valid["price"].dtype == np.float64
    assert result.valid["price"].tolist() == [10.5]
    assert result.rejects[REASON].tolist() == ["price: expected a number", "price: expected a label"]


# --- fatal problems ----------------------------------------------------------------------------


def test_missing_label_column_is_one_line_naming_it_and_listing_the_columns():
    table = _table({"mass": ["1", "2"], "island": ["a", "b"], "Species": ["s", "t"]})
    with pytest.raises(DataError) as error:
        validate(table, NUMERIC_SCHEMA)
    message = str(error.value)
    assert "\n" not in message
    assert message == "data.csv: missing label column 'species'; it has 'mass', 'island', 'Species'"


def test_missing_feature_column_is_a_data_error_naming_it():
    table = _table({"mass": ["1", "2"], "species": ["s", "t"]})
    with pytest.raises(DataError, match="missing columns 'island'"):
        validate(table, NUMERIC_SCHEMA)


def test_missing_feature_column_is_fatal_for_an_unlabeled_batch_too():
    table = _table({"mass": ["1", "2"]})
    with pytest.raises(DataError, match="'island'"):
        validate(table, NUMERIC_SCHEMA, labeled=False)


def test_empty_table_is_a_data_error():
    table = _table({"mass": [], "island": [], "species": []})
    with pytest.raises(DataError, match="no rows"):
        validate(table, NUMERIC_SCHEMA)


def test_header_only_csv_is_a_data_error(csv_file):
    path = csv_file("empty.csv", "mass,island,species\n")
    with pytest.raises(DataError, match="no rows"):
        validate(read_raw(path, "species"), NUMERIC_SCHEMA)


def test_header_only_csv_error_names_the_file(csv_file):
    path = csv_file("empty.csv", "mass,island,species\n")
    with pytest.raises(DataError) as error:
        validate(read_raw(path, "species"), NUMERIC_SCHEMA)
    assert str(path) in str(error.value)


def test_no_usable_row_is_a_data_error_quoting_the_first_problem():
    table = _table({"mass": ["x", "y"], "island": ["a", "b"], "species": ["s", "t"]})
    with pytest.raises(DataError, match="no usable rows; first problem: data.csv: column 'mass'"):
        validate(table, NUMERIC_SCHEMA)


# --- batches, ids, duplicates ------------------------------------------------------------------


def test_unlabeled_batch_without_label_passes():
    table = _table({"mass": ["1", "2"], "island": ["a", None]})
    result = validate(table, NUMERIC_SCHEMA, labeled=False)
    assert len(result.valid) == 2 and result.rejects.empty
    assert "species" not in result.valid.columns
    assert [p for p in result.problems if p.rejects_rows] == []


def test_unlabeled_batch_with_some_labels_keeps_rows_without_one():
    table = _table({"mass": ["1", "2"], "island": ["a", "b"], "species": ["s", None]})
    result = validate(table, NUMERIC_SCHEMA, labeled=False)
    assert len(result.valid) == 2


def test_duplicated_id_rejects_the_later_rows():
    schema = Schema(label="species", task="classification", kinds={"mass": "numeric"}, id_column="id")
    table = _table(
        {"id": ["a", "b", "a", "c", "a"], "mass": ["1", "2", "3", "4", "5"], "species": ["s", "t", "s", "t", "s"]}
    )
    result = validate(table, schema)
    assert result.valid[EXAMPLE_ID].tolist() == ["a", "b", "c"]
    assert result.valid["mass"].tolist() == [1.0, 2.0, 4.0]  # the first "a" is kept
    problem = _problem(result, "id", "a unique id")
    assert problem.rows == (3, 5)


def test_missing_id_is_rejected():
    schema = Schema(label="species", task="classification", kinds={"mass": "numeric"}, id_column="id")
    table = _table({"id": ["a", None], "mass": ["1", "2"], "species": ["s", "t"]})
    result = validate(table, schema)
    assert result.rejects[REASON].tolist() == ["id: expected an id"]


def test_unknown_extra_column_is_a_problem_that_rejects_nothing():
    table = _table({"mass": ["1", "2"], "island": ["a", "b"], "species": ["s", "t"], "colour": ["r", "g"]})
    result = validate(table, NUMERIC_SCHEMA)
    assert len(result.valid) == 2 and result.rejects.empty
    problem = _problem(result, "colour", "no such column (it is ignored)")
    assert problem.rejects_rows is False
    assert problem.line() == "data.csv: column 'colour', all rows: expected no such column (it is ignored)"
    assert "colour" not in result.valid.columns


def test_all_missing_feature_column_is_a_problem_that_rejects_nothing():
    table = _table({"mass": [None, None, None], "island": ["a", "b", "a"], "species": ["s", "t", "s"]})
    result = validate(table, NUMERIC_SCHEMA)
    assert len(result.valid) == 3
    problem = _problem(result, "mass", "some values")
    assert problem.rejects_rows is False
    assert result.missing_share == {"mass": 1.0, "island": 0.0}


def test_missing_share_is_measured_on_valid_rows():
    table = _table({"mass": ["1", None, "3", "4"], "island": ["a", "b", None, None], "species": ["s", "t", "s", "t"]})
    result = validate(table, NUMERIC_SCHEMA)
    assert result.missing_share == {"mass": 0.25, "island": 0.5}


def test_content_hash_ids_are_unique_even_for_identical_rows():
    table = _table({"mass": ["1", "1", "1", "2"], "island": ["a", "a", "a", "b"], "species": ["s", "s", "s", "t"]})
    result = validate(table, NUMERIC_SCHEMA)
    ids = result.valid[EXAMPLE_ID]
    assert ids.is_unique
    keys = result.valid[DUPLICATE_KEY]
    assert keys[0] == keys[1] == keys[2] != keys[3]


def test_content_hash_ids_are_stable_across_calls_and_files():
    first = validate(_table({"mass": ["1", "2"], "island": ["a", "b"], "species": ["s", "t"]}, "a.csv"), NUMERIC_SCHEMA)
    again = validate(_table({"mass": ["1", "2"], "island": ["a", "b"], "species": ["s", "t"]}, "b.csv"), NUMERIC_SCHEMA)
    assert first.valid[EXAMPLE_ID].tolist() == again.valid[EXAMPLE_ID].tolist()


def test_rows_differing_only_in_label_share_a_duplicate_key_but_not_an_id():
    # The duplicate key hashes the features: the same input with two labels must not straddle splits.
    table = _table({"mass": ["1", "1"], "island": ["a", "a"], "species": ["s", "t"]})
    result = validate(table, NUMERIC_SCHEMA)
    assert result.valid[DUPLICATE_KEY].nunique() == 1
    assert result.valid[EXAMPLE_ID].nunique() == 2


def test_missing_values_in_several_rows_still_give_distinct_keys():
    table = _table({"mass": [None, None, "3"], "island": ["a", "b", None], "species": ["s", "t", "s"]})
    result = validate(table, NUMERIC_SCHEMA)
    assert result.valid[DUPLICATE_KEY].nunique() == 3


def test_two_copies_of_one_image_share_a_duplicate_key(tmp_path, png):
    first = png(tmp_path / "a" / "one.png", (10, 20, 30))
    copy = tmp_path / "b" / "renamed.png"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    other = png(tmp_path / "c" / "other.png", (30, 20, 10))
    schema = Schema(label="y", task="classification", kinds={"photo": "image"})
    result = validate(_table({"photo": [str(first), str(copy), str(other)], "y": ["a", "a", "b"]}), schema)
    keys = result.valid[DUPLICATE_KEY]
    assert keys[0] == keys[1] != keys[2]
    assert result.valid[EXAMPLE_ID].is_unique


def test_validate_does_not_mutate_its_input(messy_csv):
    table = read_raw(messy_csv, "species")
    before = table.copy(deep=True)
    validate(table, MESSY_SCHEMA)
    pd.testing.assert_frame_equal(table, before)


def test_group_and_slice_columns_are_carried_and_the_time_column_typed():
    schema = Schema(
        label="species",
        task="classification",
        kinds={"mass": "numeric"},
        group_column="patient",
        time_column="when",
        slice_column="site",
    )
    table = _table(
        {
            "mass": ["1", "2"],
            "patient": ["p1", "p2"],
            "when": ["2024-01-01", "2024-01-02"],
            "site": ["north", None],
            "species": ["s", "t"],
        }
    )
    result = validate(table, schema)
    assert result.valid["patient"].tolist() == ["p1", "p2"]
    assert result.valid["when"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-02"]
    assert result.valid["site"].iloc[0] == "north"
    assert [p for p in result.problems if p.column in ("patient", "when", "site")] == []


def test_boolean_column_inferred_numeric_is_typed_not_rejected():
    from pipeline.stages.schema import DatasetConfig, infer_schema

    table = _table({"flag": [True, False, True], "species": ["s", "t", "s"]}, "data.parquet")
    schema = infer_schema(table, DatasetConfig(path="data.parquet", label="species"))
    assert schema.kinds == {"flag": "numeric"}
    result = validate(table, schema)
    assert result.rejects.empty
    assert result.valid["flag"].tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("role", ["id_column", "group_column", "time_column"])
def test_configured_id_group_or_time_column_missing_from_training_data_is_a_data_error(role):
    schema = Schema(label="species", task="classification", kinds={"mass": "numeric"}, **{role: "patient"})
    table = _table({"mass": ["1", "2"], "species": ["s", "t"]})
    with pytest.raises(DataError, match="'patient'"):
        validate(table, schema)
