"""Data that was silently misread before 0.2, through the tasks as a user runs them: transparent
images, near-duplicates across the split, day-first dates, and a split that cannot be trusted."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from luigi.execution_summary import LuigiStatusCode
from PIL import Image

from pipeline.store import database
from tasks import EvaluateModel, SplitData, ValidateData
from tests.tasks.support import build, fresh

pytestmark = pytest.mark.slow
SUCCEEDED = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
SIDE = 16
SHAPES = ("left", "right", "top")


def _alpha(shape: str, rng: np.random.Generator) -> np.ndarray:
    """Opaque where the shape is, transparent elsewhere: a bar on one side, at a jittered place."""
    alpha = np.zeros((SIDE, SIDE), np.uint8)
    start, length = rng.integers(0, 3), rng.integers(4, 7)
    if shape == "left":
        alpha[2:14, start : start + length] = 255
    elif shape == "right":
        alpha[2:14, SIDE - start - length : SIDE - start] = 255
    else:
        alpha[start : start + length, 2:14] = 255
    return alpha


def _shapes_folder(root: Path, mode: str, per_class: int = 60) -> Path:
    """Shapes drawn only in transparency (every colour value black), saved as `mode` PNGs."""
    rng = np.random.default_rng(7)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True)
        for i in range(per_class):
            alpha = _alpha(shape, rng)
            black = np.zeros_like(alpha)
            path = root / shape / f"{shape}{i:03d}.png"
            if mode == "RGBA":
                Image.fromarray(np.dstack([black, black, black, alpha]), "RGBA").save(path)
            elif mode == "LA":
                Image.fromarray(np.dstack([black, alpha]), "LA").save(path)
            else:  # a palette of two black colours, the first transparent
                palette = Image.fromarray((alpha > 0).astype(np.uint8), "P")
                palette.putpalette([0, 0, 0, 0, 0, 0])
                palette.save(path, transparency=0)
    return root


def _test_accuracy() -> float:
    metrics = json.loads((Path(fresh(EvaluateModel).output().path) / "metrics.json").read_text())
    return metrics["splits"]["test"]["accuracy"]


@pytest.mark.parametrize("mode", ["RGBA", "P", "LA"])
def test_shapes_drawn_only_in_transparency_train_well_above_the_majority_class(configure, tmp_path, mode):
    folder = _shapes_folder(tmp_path / "raw" / "shapes", mode)
    configure(
        dataset={"path": str(folder)},
        TrainModel={"architecture": "cnn", "epochs": "6", "batch_size": "16", "patience": "0"},
    )
    result = build(EvaluateModel())
    assert result.status in SUCCEEDED, result.summary_text
    majority = 1 / len(SHAPES)
    assert _test_accuracy() >= majority + 0.4  # black on black before 0.2: about the majority
    report = json.loads((Path(fresh(ValidateData).output().path) / "report.json").read_text())
    assert report["warnings"] == []  # composited onto white, no image is blank


def test_blank_decoding_is_a_validation_warning(configure, tmp_path):
    folder = _shapes_folder(tmp_path / "raw" / "shapes", "RGBA", per_class=5)
    configure(dataset={"path": str(folder)}, FitPreprocessor={"image_background": "black"})
    assert build(ValidateData()).status in SUCCEEDED
    report = json.loads((Path(fresh(ValidateData).output().path) / "report.json").read_text())
    assert len(report["warnings"]) == 1
    assert "15 of 15 images in 'image' (100%) are nearly blank after decoding onto black" in report["warnings"][0]


def _sizes_folder(root: Path, pictures: int = 24) -> Path:
    """Each picture at 32, 48 and 64 pixels; picture 0 also as a JPEG stored on its side with EXIF."""
    rng = np.random.default_rng(1)
    for picture in range(pictures):
        label = "even" if picture % 2 == 0 else "odd"
        (root / label).mkdir(parents=True, exist_ok=True)
        blocks = Image.fromarray(rng.integers(0, 256, (8, 8)).astype(np.uint8))
        for side in (32, 48, 64):
            blocks.resize((side, side), Image.Resampling.NEAREST).save(root / label / f"pic{picture}_{side}.png")
        if picture == 0:
            exif = Image.Exif()
            exif[0x0112] = 6  # turn 90 degrees clockwise to view
            turned = blocks.resize((40, 40), Image.Resampling.NEAREST).rotate(90, expand=True)
            turned.save(root / label / "pic0_photo.jpg", exif=exif, quality=95)
    return root


def _split_of_each_picture() -> pd.Series:
    split = fresh(SplitData).output().path
    manifest = pd.read_parquet(Path(split) / "manifest.parquet")
    return manifest.groupby(manifest["example_id"].str.split("_").str[0])["split"].nunique()


def test_one_picture_at_three_sizes_stays_in_one_split_and_straddles_with_a_warning_when_off(configure, tmp_path):
    folder = _sizes_folder(tmp_path / "raw" / "pictures")
    configure(dataset={"path": str(folder)})
    assert build(SplitData()).status in SUCCEEDED
    assert (_split_of_each_picture() == 1).all()
    checks = json.loads((Path(fresh(SplitData).output().path) / "checks.json").read_text())
    assert checks["near_duplicates"]["groups"] == 24 and checks["near_duplicates"]["examples"] == 73
    assert checks["duplicates_within_one_split"]["passed"] and checks["warnings"] == []

    configure(dataset={"path": str(folder)}, SplitData={"near_duplicate_threshold": "0"})
    assert build(SplitData()).status in SUCCEEDED
    assert (_split_of_each_picture() > 1).any()
    checks = json.loads((Path(fresh(SplitData).output().path) / "checks.json").read_text())
    assert checks["near_duplicates"]["kept_together"] is False and checks["near_duplicates"]["straddling"] > 0
    assert any("groups of near-duplicates straddle the splits" in warning for warning in checks["warnings"])


def test_an_image_folder_grouped_by_file_name_keeps_each_group_in_one_split(configure, tmp_path):
    folder = _sizes_folder(tmp_path / "raw" / "pictures")
    configure(
        dataset={"path": str(folder), "group_pattern": r"^(pic\d+)_"}, SplitData={"near_duplicate_threshold": "0"}
    )
    assert build(SplitData()).status in SUCCEEDED
    assert (_split_of_each_picture() == 1).all()
    checks = json.loads((Path(fresh(SplitData).output().path) / "checks.json").read_text())
    assert checks["groups_within_one_split"]["passed"] is True


def _weather_csv(path: Path, *, day_first: bool, rows: int = 360) -> Path:
    """A year of days, ISO dates mixed with DD/MM/YYYY ones; the later days are warmer."""
    rng = np.random.default_rng(5)
    days = pd.date_range("2012-01-01", periods=rows, freq="D")
    # Day-first only where the day is 12 or less: every such value also reads month-first.
    written = [
        d.strftime("%d/%m/%Y") if day_first and i % 3 == 0 and d.day <= 12 else d.strftime("%Y-%m-%d")
        for i, d in enumerate(days)
    ]
    temperature = 10 + 10 * np.sin(2 * np.pi * (days.day_of_year.to_numpy() - 100) / 365) + rng.normal(0, 1, rows)
    table = pd.DataFrame(
        {"day": written, "temp": temperature.round(4), "weather": np.where(temperature > 10, "warm", "cold")}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    table.sample(frac=1, random_state=0).to_csv(path, index=False)  # not in time order on disk
    return path


def _runs(url: str, query: str) -> list[dict]:
    with database.connect(url).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(query))]


def test_mixed_day_first_dates_stop_the_run_and_a_declared_format_splits_by_the_true_dates(configure, tmp_path):
    path = _weather_csv(tmp_path / "raw" / "weather.csv", day_first=True)
    configure(dataset={"path": str(path), "label": "weather", "time_column": "day"})
    assert build(ValidateData()).status == LuigiStatusCode.FAILED
    (run,) = _runs(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}", "SELECT error FROM runs WHERE status = 'failed'")
    assert f"{path}: column 'day': rows " in run["error"] and "read two ways" in run["error"]

    configure(dataset={"path": str(path), "label": "weather", "time_column": "day", "date_format": "day-first"})
    assert build(EvaluateModel()).status in SUCCEEDED
    validated = pd.read_parquet(Path(fresh(ValidateData).output().path) / "valid.parquet")
    manifest = pd.read_parquet(Path(fresh(SplitData).output().path) / "manifest.parquet")
    times = validated.set_index("example_id")["day"]
    by_split = manifest.assign(day=times.loc[manifest["example_id"]].to_numpy()).groupby("split")["day"]
    assert (
        by_split.max()["train"] < by_split.min()["validation"] <= by_split.max()["validation"] < by_split.min()["test"]
    )
    assert by_split.max()["test"] == pd.Timestamp("2012-12-25", tz="UTC")  # 360 days from 1 January


def test_a_time_split_without_a_class_in_test_warns_everywhere(configure, tmp_path, caplog):
    from tasks.cli import main

    rows = 300
    days = pd.date_range("2012-01-01", periods=rows, freq="D").strftime("%Y-%m-%d")
    weather = np.where(np.arange(rows) < 60, "snow", np.where(np.arange(rows) % 2 == 0, "rain", "sun"))
    wind = np.random.default_rng(2).normal(10, 3, rows).round(2)
    table = pd.DataFrame({"day": days, "wind": wind, "weather": weather})
    path = tmp_path / "raw" / "weather.csv"
    path.parent.mkdir(parents=True)
    table.to_csv(path, index=False)
    configure(dataset={"path": str(path), "label": "weather", "time_column": "day"})
    with caplog.at_level("WARNING"):
        assert build(EvaluateModel()).status in SUCCEEDED
    warning = "test has no rows of class 'snow' (60 train rows): test scores say nothing about it"
    assert any(warning in record.getMessage() for record in caplog.records)
    checks = json.loads((Path(fresh(SplitData).output().path) / "checks.json").read_text())
    assert warning in checks["warnings"]
    evaluation = Path(fresh(EvaluateModel).output().path)
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["diagnosis"]["diagnosis"] != "fine" and "no rows of class 'snow'" in metrics["diagnosis"]["reason"]
    report = (evaluation / "report.html").read_text()
    assert report.index("Split warnings") < report.index("Metrics") and html.escape(warning) in report
    summary = CliRunner().invoke(main, ["summary"], catch_exceptions=False).output
    assert f"warning:  split: {warning}" in summary


def test_a_date_feature_is_scored_at_night_and_a_date_training_never_ordered_is_rejected(configure, tmp_path):
    import datetime

    from tasks import Nightly, RegisterModel

    path = _weather_csv(tmp_path / "raw" / "weather.csv", day_first=False)  # ISO dates only
    url = f"sqlite:///{tmp_path / 'data' / 'overnight.db'}"
    configure(dataset={"path": str(path), "label": "weather"})  # 'day' is a datetime feature
    assert build(RegisterModel()).status in SUCCEEDED
    night = datetime.date(2013, 1, 10)
    folder = tmp_path / "data" / "incoming" / night.isoformat()
    folder.mkdir(parents=True)
    days = ["2013-01-05", "2013-01-06", "03/02/2013", "13/02/2013"]  # 3 February or 2 March?
    pd.DataFrame({"day": days, "temp": [1.0, 2.0, 3.0, 4.0]}).to_csv(folder / "batch.csv", index=False)
    build(fresh(Nightly, date=night))
    (batch,) = _runs(url, "SELECT rows_in, rows_rejected, rows_scored FROM batches")
    assert batch == {"rows_in": 4, "rows_rejected": 1, "rows_scored": 3}
    scored = _runs(url, "SELECT example_id FROM predictions")
    assert len(scored) == 3
