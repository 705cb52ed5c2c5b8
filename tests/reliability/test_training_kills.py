"""A kill while a finished training's model folder is written costs its rerun no epoch: the model
is kept in the training's work folder before the epoch checkpoints go (pipeline/stages/training.py)."""

from __future__ import annotations

import json

import pytest

from tests.reliability.conftest import (
    CRASH_TRAINING,
    LUIGI,
    crash_kill,
    crash_new_world,
    crash_pause_env,
    crash_wait_for_pause,
)

pytestmark = pytest.mark.slow
SAVED = "model-folder:saved"  # model.keras written, the folder's side files not yet


def test_a_kill_while_the_model_folder_is_written_costs_no_epoch(tmp_path):
    world = crash_new_world(tmp_path / "world")
    log = tmp_path / "first.log"
    first = world.start([LUIGI, "--module", "tasks", "TrainModel"], log, **crash_pause_env(SAVED))
    crash_wait_for_pause(first, log, SAVED)
    crash_kill(first)

    rerun = world.luigi("TrainModel")

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    epochs = int(CRASH_TRAINING["epochs"])
    (folder,) = [path for path in (world.data / "05_training").iterdir() if not path.name.startswith(".")]
    record = json.loads((folder / "training.json").read_text())
    assert record["resumed_from_epoch"] == record["epochs_run"] == epochs  # every epoch was done before the kill
    assert not any((world.data / "05_training" / ".work").glob("*")), "the work folder goes with the output"
