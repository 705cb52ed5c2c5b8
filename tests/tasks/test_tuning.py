"""TuneModel: trials in parallel worker processes, each a recorded run; failures do not stop it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.stages import tuning
from pipeline.store import database
from tests.tasks.support import subprocess_env

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).with_name("luigi"))


def test_grid_and_random_trials():
    space = tuning.parse_space("learning_rate: 0.001, 0.003; batch_size: 32, 64; architecture: cnn")
    grid = tuning.trials(space, strategy="grid", count=0, seed=0)
    assert len(grid) == 4 and {"learning_rate": "0.003", "batch_size": "64", "architecture": "cnn"} in grid
    drawn = tuning.trials(space, strategy="random", count=3, seed=1)
    assert len(drawn) == 3 and len({tuning.trial_key(t) for t in drawn}) == 3
    assert drawn == tuning.trials(space, strategy="random", count=3, seed=1)
    with pytest.raises(ValueError, match="not `parameter: value"):
        tuning.parse_space("learning_rate 0.001")


def test_best_trial_ignores_failures():
    outcomes = [
        {"status": "failed"},
        {"status": "succeeded", "validation_headline": 0.8, "id": 1},
        {"status": "succeeded", "validation_headline": 0.9, "id": 2},
        {"status": "succeeded", "validation_headline": float("nan"), "id": 3},
    ]
    assert tuning.best_trial(outcomes)["id"] == 2
    assert tuning.best_trial([{"status": "failed"}]) is None


def test_tune_model_runs_six_trials_on_two_workers_and_survives_failing_ones(configure, digits_folder, tmp_path):
    # mlp cannot take images: those three trials fail, as a broken configuration would.
    config = configure(
        dataset={"path": str(digits_folder)},
        TrainModel={"epochs": "1"},
        TuneModel={"space": "architecture: cnn, mlp; learning_rate: 0.001, 0.003, 0.01"},
    )
    result = subprocess.run(
        [LUIGI, "--module", "tasks", "TuneModel", "--workers", "2"],
        cwd=REPO_ROOT,
        env=subprocess_env(config),
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    (tuning_dir,) = (tmp_path / "data" / "05_training" / "tuning").iterdir()
    report = json.loads((tuning_dir / "tuning.json").read_text())
    assert len(report["trials"]) == 6
    statuses = sorted(t["status"] for t in report["trials"])
    assert statuses == ["failed"] * 3 + ["succeeded"] * 3
    assert report["best"]["params"]["architecture"] == "cnn"
    assert "--TrainModel-architecture cnn" in report["next"]

    engine = database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}")
    with engine.connect() as connection:
        runs = connection.execute(sa.text("SELECT status, pid FROM runs WHERE task = 'TrainModel'")).all()
    assert sorted(status for status, _ in runs) == ["failed"] * 3 + ["succeeded"] * 3
    assert len({pid for _, pid in runs}) > 1, "trials ran in more than one worker process"
