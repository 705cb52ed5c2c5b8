"""A kill while a finished training's model folder is written costs its rerun no epoch: the model
is kept in the training's work folder before the epoch checkpoints go (pipeline/stages/training.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

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


def test_a_run_killed_and_not_yet_reaped_is_settled_by_the_next_command(tmp_path):
    """Right after SIGKILL a process is a zombie until its parent reaps it, and kill(pid, 0) still
    succeeds on it: the next command must count it gone, not leave its run `running`."""
    import os
    import signal

    world = crash_new_world(tmp_path / "world")
    log = tmp_path / "first.log"
    paused = "run:before-finish:TrainModel"  # the model is made, its run still `running`
    first = world.start([LUIGI, "--module", "tasks", "TrainModel"], log, **crash_pause_env(paused))
    crash_wait_for_pause(first, log, paused)
    os.killpg(first.pid, signal.SIGKILL)  # not waited for: a zombie until this test reaps it
    try:
        for _ in range(100):
            state = Path(f"/proc/{first.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                break
            time.sleep(0.02)
        assert state == "Z", f"process {first.pid} is in state {state}, not a zombie"

        rerun = world.luigi("TrainModel")

        assert rerun.returncode == 0, rerun.stderr[-3000:]
        runs = world.rows("SELECT pid, status, error FROM runs WHERE task LIKE 'TrainModel%' ORDER BY started_at")
        assert [run["status"] for run in runs] == ["abandoned"], runs  # the rerun found the model made
        assert f"process {first.pid} on " in runs[0]["error"] and "ended without finishing" in runs[0]["error"]
    finally:
        first.wait()
