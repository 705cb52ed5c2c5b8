"""Unit tests for pipeline/stages/references.py and the rolling window's night finder."""

import datetime
import json
import os

import numpy as np
import pandas as pd
import pytest

from pipeline.artifacts.monitoring import DriftFolder, quiet_nights
from pipeline.stages.monitoring import DriftThresholds, compare
from pipeline.stages.profiles import reference_profile
from pipeline.stages.references import QuietNight, calendar_reference, in_window, rolling_reference
from pipeline.stages.schema import Schema
from pipeline.stages.seasons import CALENDAR, calendar_sample

SCHEMA = Schema(label="y", task="classification", kinds={"t": "numeric", "kind": "categorical"}, time_column="day")


def _seasonal(days: pd.DatetimeIndex, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    season = -np.cos(2 * np.pi * (days.day_of_year.to_numpy() - 15) / 365.25)
    return pd.DataFrame(
        {
            "day": days,
            "t": 10 * season + rng.normal(0, 2, len(days)),
            "kind": rng.choice(["a", "b"], len(days)),
            "y": rng.choice(["0", "1"], len(days)),
        }
    )


def _training() -> dict:
    table = _seasonal(pd.date_range("2022-01-01", "2024-12-31", freq="D").repeat(4))
    profile = reference_profile(table, SCHEMA, background=None)
    profile[CALENDAR] = calendar_sample(table, SCHEMA, background=None)
    return json.loads(json.dumps(profile))  # as read back from reference.json


def _calendar(training: dict, date: datetime.date, **options):
    settings = {"schema": SCHEMA, "window_days": 15, "min_rows": 30, "test_calendar": None, "numeric": False}
    return calendar_reference(training, date, **{**settings, **options})


def test_the_window_wraps_around_the_turn_of_the_year():
    new_year = datetime.date(2026, 1, 3)
    assert in_window([360, 365, 1, 18, 19, 200], new_year, 15).tolist() == [True, True, True, True, False, False]


def test_a_winter_night_is_quiet_against_its_window_and_alerts_against_the_year():
    training = _training()
    night = _seasonal(pd.DatetimeIndex([pd.Timestamp("2025-01-10")] * 400), seed=5)
    window = _calendar(training, datetime.date(2025, 1, 10))
    assert not window.fallback
    assert window.description.startswith("calendar: 376 training rows within 15 days of 10 January")
    _, against_window = compare(night, SCHEMA, window.features, DriftThresholds())
    _, against_year = compare(night, SCHEMA, training, DriftThresholds())
    assert not against_window["alert"].any(), against_window
    assert set(against_year.loc[against_year["alert"], "feature"]) == {"t"}


def test_a_calendar_reference_without_rows_in_the_window_falls_back_and_says_why():
    training = _training()
    sparse = {
        **training,
        CALENDAR: {**training[CALENDAR], "day_of_year": [200] * len(training[CALENDAR]["day_of_year"])},
    }
    fallback = _calendar(sparse, datetime.date(2025, 1, 5))
    assert fallback.fallback and fallback.features is sparse
    assert "training has 0 rows within 15 days of 5 January" in fallback.description
    undated = {key: value for key, value in training.items() if key != CALENDAR}
    fallback = _calendar(undated, datetime.date(2025, 1, 5))
    assert fallback.fallback and "no dated time column" in fallback.description


def test_the_window_s_test_predictions_are_the_prediction_reference_when_there_are_enough():
    training = _training()
    test_calendar = {"day_of_year": [10] * 40 + [200] * 40, "prediction": ["1"] * 40 + ["0"] * 40}
    date = datetime.date(2025, 1, 10)
    window = _calendar(training, date, test_calendar=test_calendar)
    assert window.predictions["proportions"] == {"1": 1.0}
    too_few = _calendar(training, date, min_rows=50, test_calendar=test_calendar)
    assert too_few.predictions is None and "whole test split" in too_few.description


def test_a_rolling_reference_profiles_the_quiet_nights_or_falls_back_without_enough_rows():
    training = _training()
    nights = [
        QuietNight(
            datetime.date(2025, 3, day), _seasonal(pd.DatetimeIndex(["2025-03-01"] * 50), day), pd.Series(["1"] * 50)
        )
        for day in (1, 2)
    ]
    kwargs = {"wanted": 7, "schema": SCHEMA, "numeric": False}
    rolling = rolling_reference(training, nights, min_rows=30, **kwargs)
    assert rolling.description == "rolling: 2 of 7 quiet nights, 2025-03-01 to 2025-03-02 (100 rows)"
    assert rolling.features["rows"] == 100 and rolling.predictions["proportions"] == {"1": 1.0}
    assert rolling_reference(training, nights, min_rows=101, **kwargs).fallback
    assert rolling_reference(training, [], min_rows=30, **kwargs).description.startswith("the training split (rolling")


def _drift_folder(root, date: str, name: str, *, model: str, alerts: int, rows: int = 100, scores="s", age=0):
    folder = root / date / name
    folder.mkdir(parents=True)
    summary = {"model_version": model, "alerts": alerts, "rows": rows, **({"scores_version": scores} if scores else {})}
    (folder / "summary.json").write_text(json.dumps(summary))
    os.utime(folder, (1_000_000 + age, 1_000_000 + age))


def test_quiet_nights_are_the_newest_drift_of_the_model_that_did_not_alert(tmp_path):
    version, other = "drift-" + "a" * 16, "drift-" + "b" * 16
    _drift_folder(tmp_path, "2025-03-01", version, model="m1", alerts=0)
    _drift_folder(tmp_path, "2025-03-02", version, model="m1", alerts=3)  # alerted
    _drift_folder(tmp_path, "2025-03-03", version, model="m2", alerts=0)  # another model
    _drift_folder(tmp_path, "2025-03-04", version, model="m1", alerts=0, scores=None)  # before rolling existed
    _drift_folder(tmp_path, "2025-03-05", version, model="m1", alerts=0)
    _drift_folder(tmp_path, "2025-03-06", version, model="m1", alerts=0)  # the night itself
    _drift_folder(tmp_path, "2025-03-07", version, model="m1", alerts=0, age=0)  # quiet once, then alerted:
    _drift_folder(tmp_path, "2025-03-07", other, model="m1", alerts=2, age=10)  # the newest run counts
    _drift_folder(tmp_path, "2025-03-08", version, model="m1", alerts=0, rows=12)  # too few rows to say
    _drift_folder(tmp_path, "2025-03-09", version + "-luigi-tmp-123", model="m1", alerts=0)  # scratch
    _drift_folder(tmp_path, "2025-03-10", version + ".damaged-20250310T000000Z", model="m1", alerts=0)
    (tmp_path / "report-2025-03-05.html").write_text("")
    options = {"model_version": "m1", "min_rows": 30}
    found = quiet_nights(tmp_path, before=datetime.date(2025, 3, 6), count=7, **options)
    assert [date.isoformat() for date, _ in found] == ["2025-03-05", "2025-03-01"]
    assert all(isinstance(folder, DriftFolder) for _, folder in found)
    assert len(quiet_nights(tmp_path, before=datetime.date(2025, 3, 6), count=1, **options)) == 1
    later = quiet_nights(tmp_path, before=datetime.date(2025, 3, 11), count=7, **options)
    assert [date.isoformat() for date, _ in later] == ["2025-03-06", "2025-03-05", "2025-03-01"]
    with pytest.raises(ValueError, match="rolling_nights must be at least 1"):
        quiet_nights(tmp_path, before=datetime.date(2025, 3, 6), count=0, **options)


def test_the_calendar_sample_decodes_as_many_images_as_the_reference_and_leaves_unreadable_ones_out(
    tmp_path, monkeypatch
):
    from PIL import Image

    from pipeline.stages import seasons

    monkeypatch.setattr(seasons, "IMAGE_ROWS", 3)
    paths = []
    for number in range(5):
        path = tmp_path / f"{number}.png"
        Image.new("L", (8, 8), color=40 * number).save(path)
        paths.append(str(path))
    (tmp_path / "1.png").write_bytes(b"not an image")
    schema = Schema(label="y", task="classification", kinds={"photo": "image"}, time_column="day")
    table = pd.DataFrame({"photo": paths, "day": pd.date_range("2024-01-01", periods=5), "y": "a"})
    sample = calendar_sample(table, schema, background=None)
    brightness = sample["features"]["photo:brightness"]
    assert [value is None for value in brightness] == [False, True, False, True, True]  # 1 unreadable; 3, 4 not decoded
    window = _calendar(
        {**reference_profile(table, schema, background=None), CALENDAR: sample},
        datetime.date(2025, 1, 2),
        min_rows=1,
        schema=schema,
    )
    assert (
        window.features["features"]["photo:brightness"]["rows"] == 2
        and window.features["features"]["photo:brightness"]["missing_share"] == 0
    )
