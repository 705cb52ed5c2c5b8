"""Unit tests for what validation reads from real exports: dates by one rule, declared missing
markers, repeated header rows, date features and image-folder groups."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from pipeline.common.columns import IMAGE_GROUP_COLUMN, REASON, SOURCE_ROW
from pipeline.errors import DataError
from pipeline.stages.raw import read_raw
from pipeline.stages.schema import DatasetConfig, infer_schema
from pipeline.stages.validation import validate

MIXED_DATES = (
    "day,temp,weather\n"
    "2012-01-01,3.1,rain\n"
    "02/01/2012,2.0,rain\n"  # 2 January, or 1 February?
    "2012-01-03,4.4,sun\n"
    "04/01/2012,5.0,sun\n"
)


def _read(path: Path, **settings):
    config = DatasetConfig(path=str(path), label=settings.pop("label", "weather"), **settings)
    table = read_raw(path, config.label, missing_values=config.missing_values, group_pattern=config.group_pattern)
    return table, infer_schema(table, config)


def test_mixed_iso_and_day_first_dates_stop_with_one_line_naming_the_rows(csv_file):
    path = csv_file("weather.csv", MIXED_DATES)
    table, schema = _read(path, time_column="day")
    with pytest.raises(DataError) as error:
        validate(table, schema)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: column 'day': rows 2, 4 read two ways: '02/01/2012' reads as 2012-01-02")
    assert "declare [dataset] date_format = day-first, month-first" in message


def test_a_declared_date_format_reads_the_true_dates_and_the_rule_is_kept_for_the_nights(csv_file):
    table, schema = _read(csv_file("weather.csv", MIXED_DATES), time_column="day", date_format="day-first")
    result = validate(table, schema)
    assert result.valid["day"].dt.strftime("%m-%d").tolist() == ["01-01", "01-02", "01-03", "01-04"]
    assert result.schema.date_formats == {"day": "day-first"}

    night = table.drop(columns="weather").assign(day=["05/01/2012", "13/01/2012", "2012-01-07", "soon"])
    nightly = validate(night, result.schema, labeled=False)
    assert nightly.valid["day"].dt.strftime("%m-%d").tolist() == ["01-05", "01-13", "01-07"]
    assert nightly.rejects[REASON].tolist() == ["day: expected a date or a number"]


def test_values_decide_the_rule_when_one_of_them_only_reads_one_way(csv_file):
    path = csv_file("weather.csv", MIXED_DATES + "13/01/2012,1.0,snow\n")
    table, schema = _read(path, time_column="day")
    result = validate(table, schema)
    assert result.schema.date_formats == {"day": "day-first"}
    assert result.valid["day"].dt.strftime("%m-%d").tolist()[:2] == ["01-01", "01-02"]


def test_a_date_feature_is_inferred_and_typed_and_unreadable_dates_are_rejected(csv_file):
    rows = "".join(f"2012-{month:02d}-05,{month},a\n" for month in range(1, 13)) * 2
    path = csv_file("sales.csv", "sold,units,label\n" + rows + "sometime,5,a\n")
    table, schema = _read(path, label="label")
    assert schema.kinds == {"sold": "datetime", "units": "numeric"}
    result = validate(table, schema)
    assert pd.api.types.is_datetime64_any_dtype(result.valid["sold"])
    assert result.rejects[REASON].tolist() == ["sold: expected a date"]


def test_declared_missing_markers_impute_instead_of_rejecting(csv_file):
    rows = "".join(f"{3 + i / 10},north,a\n" for i in range(30))
    path = csv_file("marks.csv", "mass,island,label\n" + rows + "-,?,b\n4.0,n.a.,a\n")
    table, schema = _read(path, label="label")
    assert validate(table, schema).rejects[REASON].tolist() == ["mass: expected a number"]
    table, schema = _read(path, label="label", missing_values=("-", "?", "n.a."))
    result = validate(table, schema)
    assert result.rejects.empty and schema.missing_values == ("-", "?", "n.a.")
    assert result.valid["mass"].isna().tolist()[-2:] == [True, False]
    assert result.valid["island"].isna().tolist()[-2:] == [True, True]


def test_a_repeated_header_is_one_rejected_row_with_its_reason(csv_file):
    path = csv_file("joined.csv", "mass,island,label\n3.5,north,a\nmass,island,label\n4.0,south,b\n")
    table, schema = _read(path, label="label")
    assert schema.kinds["mass"] == "numeric"  # the repeated header is no value of the column
    result = validate(table, schema)
    assert result.rejects[REASON].tolist() == ["repeated header"]
    assert result.rejects[SOURCE_ROW].tolist() == [2] and len(result.valid) == 2
    assert [(p.column, p.expected, p.example, p.rows) for p in result.problems] == [
        ("", "a data row", "repeated header", (2,))
    ]


def test_a_repeated_header_is_found_behind_a_byte_order_mark(csv_file):
    path = csv_file("joined.csv", "\ufeffmass,label\n3.5,a\n\ufeffmass,label\n4.0,b\n")
    table, schema = _read(path, label="label")
    assert validate(table, schema).rejects[REASON].tolist() == ["repeated header"]


def test_a_night_reads_its_time_column_by_the_training_rule_and_never_decides_one(csv_file):
    table, schema = _read(
        csv_file("weather.csv", MIXED_DATES.replace("02/01/2012", "2012-01-02").replace("04/01/2012", "2012-01-04")),
        time_column="day",
    )
    trained = validate(table, schema).schema
    assert trained.date_formats == {"day": ""}  # ISO only: training decided no order
    night = table.drop(columns="weather").assign(day=["13/01/2012", "02/01/2012", "2012-01-07", "05/05/2012"])
    nightly = validate(night, trained, labeled=False)
    assert nightly.rejects.empty  # the model never sees the time column: the row is scored
    days = nightly.valid["day"].dt.strftime("%m-%d").where(nightly.valid["day"].notna()).tolist()
    assert days[0] == "01-13" and pd.isna(days[1]) and days[2:] == ["01-07", "05-05"]
    (note,) = [p for p in nightly.problems if p.column == "day"]
    assert not note.rejects_rows and note.rows == (2,) and "training decided no order" in note.expected


def test_a_night_rejects_a_date_feature_that_reads_two_ways(csv_file):
    rows = "".join(f"2012-{month:02d}-05,{month},a\n" for month in range(1, 13)) * 2
    table, schema = _read(csv_file("sales.csv", "sold,units,label\n" + rows), label="label")
    trained = validate(table, schema).schema
    night = table.head(3).drop(columns="label").assign(sold=["2013-01-05", "03/02/2013", "13/02/2013"])
    nightly = validate(night, trained, labeled=False)
    assert nightly.valid["sold"].dt.strftime("%m-%d").tolist() == ["01-05", "02-13"]
    (reason,) = nightly.rejects[REASON].tolist()
    assert reason.startswith("sold: expected a date that reads one way") and "'03/02/2013'" in reason


def _icons(root: Path, names: list[str]) -> None:
    for name in names:
        (root / "shapes").mkdir(parents=True, exist_ok=True)
        Image.new("L", (4, 4), 0).save(root / "shapes" / name)


def test_an_image_folder_groups_its_files_by_a_pattern_over_their_names(tmp_path):
    _icons(tmp_path, ["cat_32px.png", "cat_64px.png", "dog_32px.png"])
    table, schema = _read(tmp_path, label="label", group_pattern=r"^(.+)_\d+px")
    assert table[IMAGE_GROUP_COLUMN].tolist() == ["cat", "cat", "dog"]
    assert schema.group_column == IMAGE_GROUP_COLUMN and IMAGE_GROUP_COLUMN not in schema.kinds


def test_a_group_pattern_that_misses_files_or_does_not_compile_names_them(tmp_path):
    _icons(tmp_path, ["cat_32px.png", "logo.png"])
    with pytest.raises(
        DataError, match=r"group_pattern '\^\(\.\+\)_\\\\d\+px' matches no group in 1 of 2 file names: shapes/logo.png"
    ):
        _read(tmp_path, label="label", group_pattern=r"^(.+)_\d+px")
    with pytest.raises(DataError, match=r"group_pattern '\(' is no regular expression"):
        _read(tmp_path, label="label", group_pattern="(")


def test_a_group_column_for_an_image_folder_points_to_the_pattern(tmp_path):
    _icons(tmp_path, ["cat_32px.png"])
    with pytest.raises(
        DataError, match="an image folder has no column 'icon' to group by; set \\[dataset\\] group_pattern"
    ):
        _read(tmp_path, label="label", group_column="icon")
