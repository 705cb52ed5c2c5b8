"""Baselines beside every evaluation, as a user meets them: run_metrics rows on both backends,
metrics.json, the report, `overnight summary`, the diagnosis, and the promotion option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from luigi.execution_summary import LuigiStatusCode

from pipeline.store import database
from tasks import EvaluateModel, RegisterModel
from tests.tasks.support import build, fresh

pytestmark = pytest.mark.slow
SUCCEEDED = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)


def _noise_csv(path: Path, rows: int = 300) -> Path:
    """A regression target that no feature explains."""
    rng = np.random.default_rng(11)
    table = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"]).assign(y=rng.normal(size=rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    table.round(5).to_csv(path, index=False)
    return path


def test_an_unpredictable_target_is_diagnosed_so_and_the_baselines_are_recorded(configure, tmp_path, database_url):
    from tasks.cli import main

    path = _noise_csv(tmp_path / "raw" / "noise.csv")
    configure(database_url=database_url, dataset={"path": str(path), "label": "y", "task": "regression"})
    assert build(EvaluateModel()).status in SUCCEEDED
    evaluation = Path(fresh(EvaluateModel).output().path)
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert list(metrics["baselines"]) == ["mean", "linear", "gradient_boosting"]
    assert metrics["diagnosis"]["diagnosis"] == "unpredictable"
    assert "no model beats the mean" in metrics["diagnosis"]["reason"]

    with database.connect(database_url).connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT m.baseline, m.value FROM run_metrics m JOIN runs r ON r.run_id = m.run_id "
                "WHERE r.task = 'EvaluateModel' AND m.split = 'test' AND m.name = 'r2'"
            )
        ).all()
    recorded = {baseline: value for baseline, value in rows}
    assert set(recorded) == {"", "mean", "linear", "gradient_boosting"}  # '' is the model itself
    assert recorded["linear"] == pytest.approx(metrics["baselines"]["linear"]["r2"])
    assert recorded[""] == pytest.approx(metrics["splits"]["test"]["r2"])

    report = (evaluation / "report.html").read_text()
    assert "test: linear" in report and "Diagnosis: unpredictable" in report
    summary = CliRunner().invoke(main, ["summary"], catch_exceptions=False).output
    assert "baseline: linear headline" in summary and "diagnosis: unpredictable" in summary
    plots = sorted(path.name for path in evaluation.glob("*.png"))
    assert len(plots) >= 2 and f"(plots: {', '.join(plots)})" in summary  # every plot, not a fixed two


def test_promotion_can_require_a_model_that_beats_its_best_baseline(configure, tmp_path):
    rng = np.random.default_rng(12)
    table = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    path = tmp_path / "raw" / "line.csv"
    path.parent.mkdir(parents=True)
    table.assign(y=3 * table["a"] - 2 * table["b"]).round(5).to_csv(path, index=False)  # ridge fits it exactly
    configure(
        dataset={"path": str(path), "label": "y", "task": "regression"},
        RegisterModel={"require_beats_baseline": "true"},
    )
    assert build(RegisterModel()).status in SUCCEEDED  # a refusal is a decision, not a failure
    registration = json.loads((Path(fresh(RegisterModel).output().path) / "registration.json").read_text())
    assert not registration["promoted"]
    assert "does not beat the linear baseline's" in registration["reason"]
    assert "require_beats_baseline" in registration["reason"]


def test_a_regression_target_in_the_thousands_trains_on_its_spread_and_is_logged_in_its_own_units(configure, tmp_path):
    import datetime

    from pipeline.artifacts.model import ModelFolder
    from pipeline.stages.features import transform
    from pipeline.stages.prediction import predict
    from tasks import Nightly, TrainModel

    rng = np.random.default_rng(13)
    table = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"]).round(5)
    path = tmp_path / "raw" / "prices.csv"
    path.parent.mkdir(parents=True)
    table.assign(price=(5000 + 300 * table["a"] - 200 * table["b"]).round(2)).to_csv(path, index=False)
    configure(dataset={"path": str(path), "label": "price", "task": "regression"}, TrainModel={"epochs": "3"})
    assert build(RegisterModel()).status in SUCCEEDED
    model = ModelFolder(Path(fresh(TrainModel).output().path))
    history = pd.read_csv(model.path / "history.csv")
    assert history["loss"].iloc[0] < 5  # in units of the target's spread (~360), not ~130,000
    night = datetime.date(2030, 1, 2)
    folder = tmp_path / "data" / "incoming" / night.isoformat()
    folder.mkdir(parents=True)
    rows = pd.DataFrame(rng.normal(size=(40, 2)), columns=["a", "b"]).round(5)
    rows.to_csv(folder / "night.csv", index=False)
    assert build(fresh(Nightly, date=night)).status in SUCCEEDED
    with database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}").connect() as connection:
        logged = pd.DataFrame(connection.execute(sa.text("SELECT prediction, score FROM predictions")).all())
    preprocessor = model.preprocessor()
    expected = predict(model.load_model(), transform(rows, preprocessor), preprocessor)
    assert len(logged) == 40
    np.testing.assert_array_equal(np.sort(logged["score"].to_numpy()), np.sort(expected.astype("float64")))
    assert 3000 < logged["score"].mean() < 7000  # label units


def test_an_imbalanced_classification_is_headlined_by_roc_auc_from_evaluation_to_the_gate(configure, tmp_path):
    """Accuracy near the majority share would flatter every model: roc_auc ranks them, in metrics.json,
    run_metrics, the report, `overnight summary` and the gate, which scores production by it too."""
    from tasks import TrainModel
    from tasks.cli import main

    rng = np.random.default_rng(14)
    rows = 300
    sick = rng.uniform(size=rows) < 0.15
    table = pd.DataFrame({"a": (rng.normal(size=rows) + 1.5 * sick).round(5), "month": rng.integers(1, 13, rows)})
    path = tmp_path / "raw" / "patients.csv"
    path.parent.mkdir(parents=True)
    table.assign(y=np.where(sick, "sick", "well")).to_csv(path, index=False)
    dataset = {"path": str(path), "label": "y", "task": "classification"}
    configure(dataset=dataset)
    assert build(RegisterModel()).status in SUCCEEDED
    evaluation = Path(fresh(EvaluateModel).output().path)
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["headline"]["definition"] == {"roc_auc": 1.0}
    assert metrics["headline"]["rule"].startswith("default for imbalanced classes: roc_auc, not accuracy")
    assert metrics["headline"]["value"] == metrics["splits"]["test"]["roc_auc"]
    assert all(found["headline"] == found["roc_auc"] for found in metrics["baselines"].values())
    assert json.loads((Path(fresh(TrainModel).output().path) / "training.json").read_text())["restored_epoch"] is None

    with database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}").connect() as connection:
        headline = connection.execute(
            sa.text(
                "SELECT m.value FROM run_metrics m JOIN runs r ON r.run_id = m.run_id WHERE r.task = 'EvaluateModel' "
                "AND m.split = 'test' AND m.name = 'headline' AND m.baseline = '' AND m.slice = ''"
            )
        ).scalar_one()
    assert headline == pytest.approx(metrics["splits"]["test"]["roc_auc"])
    report = (evaluation / "report.html").read_text()
    assert "headline roc_auc = " in report and "Chosen by the rule: default for imbalanced classes" in report
    summary = CliRunner().invoke(main, ["summary"], catch_exceptions=False).output
    assert "(roc_auc, default for imbalanced classes: roc_auc" in summary

    configure(dataset=dataset, TrainModel={"learning_rate": "0.01"})  # a second model, a candidate
    assert build(RegisterModel()).status in SUCCEEDED
    registration = json.loads((Path(fresh(RegisterModel).output().path) / "registration.json").read_text())
    assert registration["headline_definition"] == {"roc_auc": 1.0}
    assert "production_headline" in registration  # production scored on the same rows, by roc_auc
    assert "headline (roc_auc) " in registration["reason"]
