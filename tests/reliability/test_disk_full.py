"""A full disk ends a run with exit 30 and one line naming the path and the space needed; with
space back, the same command completes. The data root lives on a tmpfs of a few MB.

Mounting needs root (or a machine that allows it); elsewhere the test skips with the reason,
except under CI=true, where it must run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.reliability.conftest import LUIGI, REPO_ROOT

pytestmark = pytest.mark.slow
ONE_LINE = "Traceback (most recent call last)"


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here: {mounted.stderr.decode().strip() or 'not root'}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the disk-full test must run)")
        pytest.skip(reason)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave_kb: int) -> Path:
    """A file that takes all but `leave_kb` KB of the disk."""
    free_kb = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize // 1024
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, free_kb - leave_kb) * 1024)
    return filler


def luigi(config: Path, task: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVERNIGHT_")}
    env.update(LUIGI_CONFIG_PATH=str(config), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [LUIGI, "--module", "tasks", task], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_full_disk_fails_a_stage_in_one_line_and_the_same_command_completes_later(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "c": rng.choice(["x", "y"], 300)})
    table["label"] = np.where(table["a"] + table["b"] > 0, "yes", "no")
    tabular_csv = tmp_path / "table.csv"
    table.to_csv(tabular_csv, index=False)
    with tmpfs(tmp_path / "small", "6m") as small:
        config = tmp_path / "full.cfg"
        config.write_text(
            f"[overnight]\ndata_root = {small / 'data'}\ndatabase_url = sqlite:///{tmp_path / 'db.sqlite'}\n"
            f"[dataset]\npath = {tabular_csv}\nlabel = label\n[TrainModel]\nepochs = 2\npatience = 0\n"
        )
        filler = fill(small, leave_kb=40)
        features = luigi(config, "FitPreprocessor")  # the first stage that writes runs out: the snapshot
        assert features.returncode == 30, features.stderr[-3000:]
        [line] = [line for line in features.stderr.splitlines() if "failed    IngestData()" in line]
        assert f"the disk is full writing {small / 'data'}" in line and "free)" in line, line
        assert ONE_LINE not in features.stderr
        filler.unlink()
        assert luigi(config, "FitPreprocessor").returncode == 0

        filler = fill(small, leave_kb=40)
        training = luigi(config, "TrainModel")
        assert training.returncode == 30, training.stderr[-3000:]  # exit 30, never a segfault (139)
        [line] = [line for line in training.stderr.splitlines() if "failed" in line and "TrainModel(" in line]
        assert f"not enough space for the training checkpoint in {small / 'data' / '05_training'}" in line
        assert "needed" in line and "free on its disk" in line and ONE_LINE not in training.stderr

        filler.unlink()
        resumed = luigi(config, "TrainModel")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert list((small / "data" / "05_training").glob("*/model.keras"))


# --- every write a full disk may stop: one line, exit 30, nothing half written, no run left running


NIGHTLY = str(REPO_ROOT / "scripts" / "nightly.sh")
FULL_DISK_WORDS = ("the disk is full writing", "not enough space for")


def night_of(world) -> str:
    return world.nights[0] if world.nights else sorted(p.name for p in (world.data / "incoming").iterdir())[0]


def nightly(world, night: str, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NIGHTLY, night], cwd="/", env=world.env(**extra_env), capture_output=True, text=True, timeout=300
    )


def assert_full_disk_in_one_line(result: subprocess.CompletedProcess, disk_root: Path, failed: str) -> str:
    """Exit 30, no traceback, one failure line naming a path on the full disk; no *.tmp file left."""
    output = result.stdout + result.stderr
    assert result.returncode == 30, output[-3000:]
    assert ONE_LINE not in output, output[-3000:]
    assert "due to error in complete() method" not in output, output[-3000:]
    lines = [line for line in result.stderr.splitlines() if failed in line and any(w in line for w in FULL_DISK_WORDS)]
    assert len(lines) == 1, output[-3000:]
    assert str(disk_root) in lines[0], lines[0]
    assert not [path for path in disk_root.rglob("*.tmp")], list(disk_root.rglob("*.tmp"))
    return lines[0]


def assert_no_run_left_running(world) -> None:
    from pipeline.store import database

    running = world.rows("SELECT run_id, task FROM runs WHERE status = 'running'")
    database.dispose_all()
    assert running == [], running


# 0 KB: not even the night's lock or log; 40 and 150 KB: room for the completeness checks, whose
# caches must then be skipped rather than fail them ("due to error in complete() method").
@pytest.mark.parametrize("leave_kb", [0, 40, 150])
def test_a_night_on_a_full_disk_fails_in_one_line_and_runs_once_there_is_room(tmp_path, crash_nightly_world, leave_kb):
    with tmpfs(tmp_path / "world", "64m") as disk_root:
        world = crash_nightly_world(nights=1)
        night = night_of(world)
        filler = fill(disk_root, leave_kb=leave_kb)
        result = nightly(world, night)
        assert_full_disk_in_one_line(result, disk_root, f"nightly: {night} FAILED (exit 30)")
        filler.unlink()
        again = nightly(world, night)
        assert again.returncode == 0, again.stderr[-3000:]
        assert_no_run_left_running(world)


def test_a_full_disk_in_training_with_the_database_on_it_fails_in_one_line(tmp_path):
    import numpy as np
    import pandas as pd

    from tests.reliability.conftest import CrashWorld

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    table["label"] = np.where(table["a"] + table["b"] > 0, "yes", "no")
    tabular_csv = tmp_path / "table.csv"
    table.to_csv(tabular_csv, index=False)
    with tmpfs(tmp_path / "world", "16m") as disk_root:
        world = CrashWorld(disk_root, f"sqlite:///{disk_root / 'data' / 'overnight.db'}")
        world.write_config(tabular_csv)
        world.config.write_text(world.config.read_text().replace("architecture = cnn", "architecture = auto"))
        assert world.luigi("FitPreprocessor").returncode == 0
        filler = fill(disk_root, leave_kb=40)
        training = world.luigi("TrainModel")
        assert_full_disk_in_one_line(training, disk_root, "TrainModel(")
        filler.unlink()
        resumed = world.luigi("TrainModel")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert_no_run_left_running(world)


def test_a_disk_that_fills_while_a_night_loads_fails_in_one_line_and_the_rerun_loads_it_once(
    tmp_path, crash_nightly_world
):
    """The disk fills between the night's rows and its commit (SQLite on the same disk): exit 30,
    one line naming the database, nothing loaded; with the space back the night loads once."""
    from tests.reliability.conftest import LUIGI, PAUSE_ANNOUNCEMENT, crash_wait_for_pause

    with tmpfs(tmp_path / "world", "64m") as disk_root:
        world = crash_nightly_world(nights=1)
        night = night_of(world)
        log = tmp_path / "night.log"
        # The load waits 5 s with its rows written and its transaction open: the disk fills then.
        pause = {"OVERNIGHT_TEST_PAUSE_AT": "prediction-log:mid-load", "OVERNIGHT_TEST_PAUSE_SECONDS": "5"}
        process = world.start([LUIGI, "--module", "tasks", "Nightly", "--date", night], log, **pause)
        crash_wait_for_pause(process, log, "prediction-log:mid-load")
        filler = fill(disk_root, leave_kb=0)
        process.wait(timeout=300)
        output = log.read_text().replace(f"{PAUSE_ANNOUNCEMENT} prediction-log:mid-load", "")
        result = subprocess.CompletedProcess(process.args, process.returncode, "", output)
        line = assert_full_disk_in_one_line(result, disk_root, "LogPredictions(")
        assert str(disk_root / "data" / "overnight.db") in line, line
        assert world.rows("SELECT COUNT(*) AS n FROM predictions")[0]["n"] == 0  # the transaction rolled back

        filler.unlink()
        again = world.luigi("Nightly", "--date", night)
        assert again.returncode == 0, again.stderr[-3000:]
        loaded = world.rows("SELECT COUNT(*) AS n, COUNT(DISTINCT example_id) AS ids FROM predictions")[0]
        assert loaded["n"] == loaded["ids"] == len(world.expected_ids(night))
        assert_no_run_left_running(world)
