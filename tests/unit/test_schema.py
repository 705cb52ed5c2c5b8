"""Unit tests for pipeline/stages/schema.py: config parsing and column-kind inference."""

import numpy as np
import pandas as pd
import pytest

from pipeline.common.columns import IMAGE_ID_COLUMN, IMAGE_PATH_COLUMN, SOURCE_FILE, SOURCE_ROW
from pipeline.stages.schema import DatasetConfig, Schema, infer_kind, infer_schema, parse_kinds, reads_as_short_text

# --- parse_kinds -------------------------------------------------------------------------------


def test_parse_kinds_reads_column_kind_pairs():
    assert parse_kinds("island:categorical, year:numeric") == {"island": "categorical", "year": "numeric"}


def test_parse_kinds_tolerates_blank_entries_and_spaces():
    assert parse_kinds("  a : text ,, b:image, ") == {"a": "text", "b": "image"}
    assert parse_kinds("") == {}


def test_parse_kinds_keeps_colons_in_column_names():
    # rpartition: the kind is after the last colon.
    assert parse_kinds("time:of:day:categorical") == {"time:of:day": "categorical"}


@pytest.mark.parametrize("text", ["island", "island categorical", ":numeric", "a:numeric, b"])
def test_parse_kinds_rejects_entries_without_column_and_kind(text):
    with pytest.raises(ValueError, match="not column:kind"):
        parse_kinds(text)


# --- DatasetConfig -----------------------------------------------------------------------------


def test_dataset_config_rejects_unknown_task():
    with pytest.raises(ValueError, match="task must be one of classification, regression"):
        DatasetConfig(path="data.csv", label="y", task="ranking")


def test_dataset_config_rejects_unknown_kind_naming_the_column():
    with pytest.raises(ValueError, match=r"island has kind 'colour'.*numeric, categorical, text, image"):
        DatasetConfig(path="data.csv", label="y", kinds={"island": "colour"})


def test_dataset_config_accepts_parsed_kinds():
    config = DatasetConfig(path="data.csv", label="y", task="regression", kinds=parse_kinds("island:categorical"))
    assert config.kinds == {"island": "categorical"}
    assert config.as_dict()["task"] == "regression"


# --- infer_kind --------------------------------------------------------------------------------


def test_infer_kind_numeric_strings_are_numeric():
    assert infer_kind(pd.Series(["1", "2.5", " -3", "4e2", None])) == "numeric"


def test_infer_kind_numeric_with_a_few_typos_stays_numeric():
    # 39 numbers and one word: 97.5% parse, above the 95% threshold; the word is a bad row later.
    values = pd.Series([str(i) for i in range(39)] + ["twelve"])
    assert infer_kind(values) == "numeric"


def test_infer_kind_mostly_words_is_not_numeric():
    values = pd.Series(["1", "2", "red", "blue", "green", "red"])
    assert infer_kind(values) == "categorical"


def test_infer_kind_numeric_dtype_is_numeric():
    assert infer_kind(pd.Series([1.0, 2.0, np.nan])) == "numeric"
    assert infer_kind(pd.Series([1, 2, 3])) == "numeric"


def test_infer_kind_image_paths():
    values = pd.Series(["a/cat.png", "b/dog.JPG", "c.jpeg", "d.bmp"])
    assert infer_kind(values) == "image"


def test_infer_kind_free_text():
    values = pd.Series(
        ["the food was great and cheap", "slow service but a nice view", "would not come back here again"]
    )
    assert infer_kind(values) == "text"


def test_infer_kind_short_categoricals():
    values = pd.Series(["Biscoe", "Dream", "Torgersen", "Dream", "Biscoe island"])
    assert infer_kind(values) == "categorical"


def test_infer_kind_all_missing_is_numeric():
    assert infer_kind(pd.Series([None, None], dtype=object)) == "numeric"
    assert infer_kind(pd.Series([np.nan, np.nan])) == "numeric"


# --- infer_schema ------------------------------------------------------------------------------


def _raw_table():
    return pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "patient": ["p1", "p1", "p2"],
            "when": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "size": ["1.5", "2.5", "3.5"],
            "island": ["Biscoe", "Dream", "Biscoe"],
            "note": ["a long sentence of many words", "another long sentence of words", "and a third one here"],
            "species": ["Adelie", "Gentoo", "Adelie"],
            SOURCE_FILE: ["f.csv"] * 3,
            SOURCE_ROW: [1, 2, 3],
        }
    )


def test_infer_schema_excludes_label_id_group_time_and_source_columns():
    config = DatasetConfig(
        path="f.csv", label="species", id_column="id", group_column="patient", time_column="when", slice_column="island"
    )
    schema = infer_schema(_raw_table(), config)
    assert schema.kinds == {"size": "numeric", "island": "categorical", "note": "text"}
    assert schema.features == ["size", "island", "note"]  # column order kept
    assert (schema.label, schema.task, schema.id_column) == ("species", "classification", "id")
    assert (schema.group_column, schema.time_column, schema.slice_column) == ("patient", "when", "island")


def test_infer_schema_honours_config_kinds():
    config = DatasetConfig(
        path="f.csv",
        label="species",
        id_column="id",
        group_column="patient",
        time_column="when",
        kinds={"size": "categorical", "note": "categorical"},
    )
    schema = infer_schema(_raw_table(), config)
    assert schema.kinds == {"size": "categorical", "island": "categorical", "note": "categorical"}
    assert schema.columns_of("categorical") == ["size", "island", "note"]


def test_infer_schema_image_folder_uses_image_id_column():
    table = pd.DataFrame(
        {
            IMAGE_PATH_COLUMN: ["r/cat/a.png", "r/dog/b.png"],
            "label": ["cat", "dog"],
            IMAGE_ID_COLUMN: ["a", "b"],
            SOURCE_FILE: ["r/cat/a.png", "r/dog/b.png"],
            SOURCE_ROW: [1, 1],
        }
    )
    schema = infer_schema(table, DatasetConfig(path="r", label="label"))
    assert schema.kinds == {IMAGE_PATH_COLUMN: "image"}
    assert schema.id_column == IMAGE_ID_COLUMN


def test_infer_schema_without_id_column_has_empty_id():
    table = _raw_table().drop(columns=["id"])
    schema = infer_schema(table, DatasetConfig(path="f.csv", label="species"))
    assert schema.id_column == ""
    assert "patient" in schema.kinds  # not configured as group: an ordinary feature


def test_schema_round_trips_through_dict():
    schema = Schema(label="y", task="regression", kinds={"a": "numeric", "b": "text"}, id_column="id")
    assert Schema.from_dict(schema.as_dict()) == schema


def test_an_id_like_column_is_not_a_feature_and_is_named_in_a_warning(caplog):
    rows = 40
    table = pd.DataFrame(
        {
            "id_str": [str(10**17 + 7 * i) for i in range(rows)],  # a post's id: numbers, one per row
            "Unnamed: 0": [str(i) for i in range(rows)],  # pandas' exported index
            "user": [f"u{i}" for i in range(rows)],  # words, one per row: no category to learn
            "weight": [str(50 + 1.37 * i) for i in range(rows)],  # measured: different in every row, kept
            "year": [str(1950 + i) for i in range(rows)],  # counts up, but has a name: kept
            "colour": ["red", "blue"] * (rows // 2),
            "label": ["a", "b"] * (rows // 2),
        }
    )
    with caplog.at_level("WARNING"):
        schema = infer_schema(table, DatasetConfig(path="t.csv", label="label"))
    assert schema.features == ["weight", "year", "colour"]
    for column in ("id_str", "Unnamed: 0", "user"):
        assert f"column {column!r} looks like an id" in caplog.text
    declared = infer_schema(table, DatasetConfig(path="t.csv", label="label", kinds={"user": "categorical"}))
    assert "user" in declared.features  # declared: the user's word wins
    assert (
        "id_str" in infer_schema(table.iloc[:10], DatasetConfig(path="t.csv", label="label")).features
    )  # too few rows to tell


def _titles(rows: int = 600) -> list[str]:
    """Job titles as a person writes them: two words or three, most of them rare as a whole."""
    levels = ["Senior", "Junior", "Lead", "Assistant", "Chief", "Deputy", "Principal", "Associate"]
    fields = ["Sales", "Data", "Marketing", "Software", "Finance", "Product", "Support", "Research", "Legal"]
    roles = ["Manager", "Engineer", "Analyst", "Director", "Specialist"]
    titles = [f"{level} {field} {role}" for level in levels for field in fields for role in roles]  # 360
    titles += [f"{field} {role}" for field in fields for role in roles]  # 45 more of two words
    return [titles[(7 * i) % len(titles)] for i in range(rows)]


def test_short_text_with_many_rare_values_is_text_and_the_log_says_why(caplog):
    table = pd.DataFrame(
        {
            "title": _titles(),  # 405 titles in 600 rows, 2.9 words each: text
            "city": [["New York", "Los Angeles", "San Francisco", "Boston"][i % 4] for i in range(600)],  # few
            "user": [f"user{i % 300}" for i in range(600)],  # many, one word each: categories
            "label": ["a", "b"] * 300,
        }
    )
    with caplog.at_level("WARNING"):
        schema = infer_schema(table, DatasetConfig(path="t.csv", label="label"))
    assert schema.kinds == {"title": "text", "city": "categorical", "user": "categorical"}
    assert "column 'title' reads as short text, not categories: 405 distinct values in 600 rows" in caplog.text
    assert "'city'" not in caplog.text and "'user'" not in caplog.text
    declared = infer_schema(table, DatasetConfig(path="t.csv", label="label", kinds={"title": "categorical"}))
    assert declared.kinds["title"] == "categorical"  # declared: the user's word wins
    assert infer_kind(table["title"]) == "categorical"  # the rule is the schema's, after the id rule


def test_short_text_needs_many_distinct_values_and_a_large_share_of_them():
    assert not reads_as_short_text(pd.Series(_titles(600)[:100]))  # 100 distinct: not more than 100
    assert not reads_as_short_text(pd.Series(_titles(600) * 4))  # 405 distinct in 2,400 rows: seen 6 times each
    assert reads_as_short_text(pd.Series(_titles(600) * 2 + [None] * 1000))  # missing values are no rows
    assert not reads_as_short_text(pd.Series([None, None], dtype=object))


def test_an_id_like_column_of_words_stays_an_id_not_text(caplog):
    rows = 200
    table = pd.DataFrame(
        {
            "name": [f"Ada Lovelace {i}" for i in range(rows)],  # words, a different one in every row
            "colour": ["red", "blue"] * (rows // 2),
            "label": ["a", "b"] * (rows // 2),
        }
    )
    with caplog.at_level("WARNING"):
        schema = infer_schema(table, DatasetConfig(path="t.csv", label="label"))
    assert schema.features == ["colour"]
    assert "column 'name' looks like an id" in caplog.text and "short text" not in caplog.text
