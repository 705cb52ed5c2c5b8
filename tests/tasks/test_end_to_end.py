"""End to end on CPU, one epoch: raw files to an evaluated model and a run ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from luigi.execution_summary import LuigiStatusCode

from pipeline.artifacts.model import ModelFolder
from pipeline.common.metrics import BASELINE_DIAGNOSES
from pipeline.store import database
from tasks import EvaluateModel, TrainModel
from tests.tasks.support import build, fresh

pytestmark = pytest.mark.slow
SUCCEEDED = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
STAGES = {"IngestData", "ValidateData", "SplitData", "FitPreprocessor", "TrainModel", "EvaluateModel"}


def ledger(url: str, query: str) -> list[dict]:
    with database.connect(url).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(query))]


def test_digits_image_folder_trains_evaluates_and_records_every_run(configure, digits_folder, tmp_path):
    configure(dataset={"path": str(digits_folder), "label": "label"}, TrainModel={"architecture": "cnn"})
    result = build(EvaluateModel())
    assert result.status in SUCCEEDED, result.summary_text

    evaluation = Path(EvaluateModel().output().path)
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert set(metrics["splits"]["test"]) >= {
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "log_loss",
        "ece",
    }
    curves = {"overfitting", "underfitting", "fine", "unknown"}
    assert metrics["diagnosis"]["diagnosis"] in curves | set(BASELINE_DIAGNOSES)  # one epoch: maybe below linear
    assert list(metrics["baselines"]) == ["majority", "linear"]  # images: no trees, no TF-IDF
    assert metrics["diagnosis"].get("learning_curves", metrics["diagnosis"])["diagnosis"] in curves
    for plot in ("learning_curves.png", "confusion_matrix.png"):
        assert (evaluation / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (Path(TrainModel().output().path) / "model.keras").is_file()

    url = f"sqlite:///{tmp_path / 'data' / 'overnight.db'}"
    runs = ledger(url, "SELECT task, status, version, data_version, git_commit, packages, duration_s FROM runs")
    assert {run["task"] for run in runs} == STAGES
    assert all(run["status"] == "succeeded" and run["duration_s"] >= 0 for run in runs)
    assert len({run["data_version"] for run in runs}) == 1
    test_accuracy = ledger(
        url, "SELECT value FROM run_metrics WHERE name = 'accuracy' AND split = 'test' AND slice = '' AND baseline = ''"
    )
    assert test_accuracy and 0 <= test_accuracy[0]["value"] <= 1
    assert ledger(url, "SELECT data_version, rows FROM datasets")[0]["rows"] == 150


def test_rerun_with_nothing_changed_runs_nothing_and_a_new_parameter_trains_beside(configure, digits_folder):
    configure(dataset={"path": str(digits_folder)}, TrainModel={"architecture": "cnn"})
    assert build(TrainModel()).status in SUCCEEDED
    first = Path(fresh(TrainModel).output().path)

    again = build(fresh(TrainModel))
    assert again.status == LuigiStatusCode.SUCCESS and "Did not run any tasks" in again.summary_text

    changed = build(fresh(TrainModel, learning_rate=0.003))
    assert changed.status in SUCCEEDED
    second = Path(fresh(TrainModel, learning_rate=0.003).output().path)
    assert second != first and (second / "model.keras").is_file() and (first / "model.keras").is_file()
    # Upstream stages did not rerun: the same features feed both models.
    assert (
        json.loads((first / "training.json").read_text())["features_version"]
        == json.loads((second / "training.json").read_text())["features_version"]
    )


def test_changed_data_file_reruns_every_stage_into_new_folders(configure, tabular_csv):
    configure(dataset={"path": str(tabular_csv), "label": "label"})
    assert build(TrainModel()).status in SUCCEEDED
    before = fresh(TrainModel)
    old = {task.task_family: task.output().path for task in _chain(before)}

    tabular_csv.write_text(tabular_csv.read_text().replace("red", "crimson", 3))
    after = fresh(TrainModel)
    new = {task.task_family: task.output().path for task in _chain(after)}
    assert all(new[name] != old[name] for name in old)
    assert build(after).status in SUCCEEDED
    assert all(Path(path).exists() for path in list(old.values()) + list(new.values()))


def _chain(task):
    """The task and its first upstream task, and that one's, down to the raw data."""
    tasks = [task]
    while tasks[-1].requires():
        tasks.append(next(iter(tasks[-1].requires().values())))
    return tasks


@pytest.mark.parametrize(
    "fixture_name, dataset, metric",
    [
        ("tabular_csv", {"label": "label", "slice_column": "island"}, "f1_macro"),
        ("text_csv", {"label": "sentiment"}, "accuracy"),
        ("regression_csv", {"label": "price", "task": "regression"}, "r2"),
    ],
)
def test_csv_data_sets_train_with_only_a_config_file(configure, request, fixture_name, dataset, metric, tmp_path):
    path = request.getfixturevalue(fixture_name)
    configure(dataset={"path": str(path), **dataset}, TrainModel={"epochs": "2"})
    result = build(EvaluateModel())
    assert result.status in SUCCEEDED, result.summary_text
    url = f"sqlite:///{tmp_path / 'data' / 'overnight.db'}"
    names = {row["name"] for row in ledger(url, "SELECT name FROM run_metrics WHERE split = 'test' AND baseline = ''")}
    assert metric in names and "headline" in names
    if "slice_column" in dataset:
        slices = {row["slice"] for row in ledger(url, "SELECT DISTINCT slice FROM run_metrics WHERE slice <> ''")}
        assert slices == {"north", "south"}


def test_text_column_is_inferred_and_embedded(configure, text_csv):
    configure(dataset={"path": str(text_csv), "label": "sentiment"})
    assert build(TrainModel()).status in SUCCEEDED
    preprocessor = ModelFolder(Path(fresh(TrainModel).output().path)).preprocessor()
    assert preprocessor.schema.kinds == {"review": "text"}
    assert "indeed" in preprocessor.text["review"].vocabulary


def test_rejected_rows_are_kept_with_reasons_and_counted_in_the_run(configure, tabular_csv, tmp_path):
    text = tabular_csv.read_text().splitlines()
    text[3] = "not-a-number," + text[3].split(",", 1)[1]
    tabular_csv.write_text("\n".join(text) + "\n")
    configure(dataset={"path": str(tabular_csv), "label": "label"})
    from tasks import ValidateData

    assert build(ValidateData()).status in SUCCEEDED
    rejects = (Path(fresh(ValidateData).output().path) / "rejects.csv").read_text()
    assert "not-a-number" in rejects and "size: expected a number" in rejects
    url = f"sqlite:///{tmp_path / 'data' / 'overnight.db'}"
    run = ledger(url, "SELECT rows_in, rows_rejected FROM runs WHERE task = 'ValidateData'")[0]
    assert run == {"rows_in": 240, "rows_rejected": 1}


def test_missing_label_column_fails_the_run_and_records_it(configure, tabular_csv, tmp_path):
    configure(dataset={"path": str(tabular_csv), "label": "species"})
    from tasks import ValidateData

    result = build(ValidateData())
    assert result.status == LuigiStatusCode.FAILED
    url = f"sqlite:///{tmp_path / 'data' / 'overnight.db'}"
    # The raw stage already finds it: the first run fails, recorded with the one-line reason.
    (run,) = ledger(url, "SELECT task, status, error FROM runs WHERE status = 'failed'")
    assert run["task"] in {"IngestData", "ValidateData"} and "label column 'species'" in run["error"], run
