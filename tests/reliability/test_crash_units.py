"""The crash-safety mechanisms one by one, in-process and fast (the harness tests them whole):
fsync before the rename, output locks, the cleanup of abandoned temporary outputs, stale runs
settled when a command first runs a task (never by a completeness check), and the opt-in pause
points."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import luigi
import pytest
import sqlalchemy as sa
from luigi.configuration.cfg_parser import LuigiConfigParser
from luigi.task_register import Register

from pipeline.artifacts.folder import StageFolder
from pipeline.common import faults
from pipeline.store import database, ledger
from tasks import base, recording
from tasks.base import outputs
from tasks.config import layout
from tests.reliability.conftest import crash_config_text


@pytest.fixture
def crash_config(tmp_path, monkeypatch) -> Path:
    """A Luigi config with a scratch data root and SQLite database, in force for this test."""
    monkeypatch.delenv("OVERNIGHT_DATABASE_URL", raising=False)
    path = tmp_path / "crash.cfg"
    path.write_text(
        crash_config_text(
            {
                "overnight": {
                    "data_root": str(tmp_path / "data"),
                    "database_url": f"sqlite:///{tmp_path / 'data' / 'db.sqlite'}",
                }
            }
        )
    )
    monkeypatch.setattr(LuigiConfigParser, "_instance", None)
    monkeypatch.setattr(LuigiConfigParser, "_config_paths", [str(path)])
    Register.clear_instance_cache()
    yield path
    Register.clear_instance_cache()
    database.dispose_all()


class ToyFolder(StageFolder):
    FILES = ("a.txt", "sub/b.txt")


class CrashToyStage(base.StageTask):
    """A stage that writes two files, one in a sub-folder."""

    stage = "raw"
    artifact = ToyFolder
    label = luigi.Parameter(default="x")

    def output(self):
        return luigi.LocalTarget(str(layout().root / "98_crash_toy" / self.version))

    def build(self, out: ToyFolder) -> base.Outcome:
        (out.path / "a.txt").write_text("a")
        (out.path / "sub").mkdir()
        (out.path / "sub" / "b.txt").write_text("b")
        return base.Outcome()


def test_contents_and_folder_are_synced_before_the_rename_and_the_parent_after(crash_config, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source, destination, **kwargs):
        events.append(("rename", str(destination)))
        real_replace(source, destination, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    task = CrashToyStage()
    task.execute()
    final = task.output().path
    rename = events.index(("rename", final))
    synced_before = {
        path.split("-luigi-tmp-")[0] + path.split("-luigi-tmp-")[1][10:]
        for kind, path in events[:rename]
        if kind == "fsync" and "-luigi-tmp-" in path
    }
    assert {final, f"{final}/a.txt", f"{final}/sub", f"{final}/sub/b.txt", f"{final}/version.json"} <= synced_before
    assert ("fsync", str(Path(final).parent)) in events[rename:]


def test_a_second_holder_of_an_output_lock_waits_or_is_told(crash_config, tmp_path):
    location = str(tmp_path / "data" / "somewhere")
    with outputs.output_lock(layout().locks(), location, owner="test") as held:
        assert held
        lock_file = next(layout().locks().glob("*.lock"))
        probe = subprocess.run(["flock", "--nonblock", str(lock_file), "true"])
        assert probe.returncode != 0, "another process got the lock while it was held"
        assert f"pid {os.getpid()} on {socket.gethostname()}: test {location}" in lock_file.read_text()
    assert subprocess.run(["flock", "--nonblock", str(lock_file), "true"]).returncode == 0


def test_cleanup_removes_unlocked_temporary_outputs_and_spares_a_live_one(crash_config, tmp_path):
    task = CrashToyStage()
    stage = Path(task.output().path).parent
    ours = stage / f"{Path(task.output().path).name}-luigi-tmp-0000000001"
    dead = stage / "aaaaaaaaaaaaaaaa-luigi-tmp-0000000002"
    live = stage / "bbbbbbbbbbbbbbbb-luigi-tmp-0000000003"
    for folder in (ours, dead, live):
        folder.mkdir(parents=True)
    stray_file = stage / "cccc.json-luigi-tmp-000000004"
    stray_file.write_text("{")
    # A live writer of version bbbb... holds its output lock (here: flock holding it for sleep).
    with outputs.output_lock(layout().locks(), str(stage / "bbbbbbbbbbbbbbbb"), owner="probe"):
        pass  # creates the lock file
    lock_file = next(path for path in layout().locks().glob("*.lock") if "bbbbbbbbbbbbbbbb" in path.read_text())
    holder = subprocess.Popen(["flock", str(lock_file), "sleep", "30"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["flock", "--nonblock", str(lock_file), "true"]).returncode == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with outputs.output_lock(layout().locks(), task.output_location(), owner=task.task_family):
            task.before_run()
    finally:
        os.killpg(holder.pid, 9)
        holder.wait()
    assert not ours.exists() and not dead.exists() and not stray_file.exists()
    assert live.exists(), "a temporary folder that a live process is writing was removed"


def test_a_command_settles_a_dead_process_run_before_anything_is_scheduled(crash_config, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'data' / 'db.sqlite'}"
    engine = database.connect(url)
    run_id = ledger.start_run(
        engine, task="CrashToyStage", params={}, version="v", data_version=None, output_path="x", repo_dir=tmp_path
    )
    gone = subprocess.Popen(["true"])
    gone.wait()
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE runs SET pid = :pid WHERE run_id = :run"), {"pid": gone.pid, "run": run_id})
    monkeypatch.setattr(recording, "_settled", set())
    task = CrashToyStage()  # a command's first task: even one that finds everything complete settles
    with engine.connect() as connection:
        status = connection.execute(sa.text("SELECT status FROM runs WHERE run_id = :run"), {"run": run_id}).scalar()
    assert status == "abandoned"
    assert task.complete() is False


def test_a_completeness_check_neither_creates_nor_migrates_a_database(crash_config, tmp_path, monkeypatch):
    monkeypatch.setattr(recording, "_settled", set())
    assert CrashToyStage().complete() is False
    assert not (tmp_path / "data" / "db.sqlite").exists()


def test_an_unreachable_database_does_not_fail_a_command_that_needs_none(crash_config, monkeypatch, caplog):
    monkeypatch.setenv("OVERNIGHT_DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none?connect_timeout=1")
    monkeypatch.setattr(recording, "_settled", set())
    assert CrashToyStage().complete() is False
    assert "stale runs not checked" in caplog.text
    caplog.clear()
    assert CrashToyStage(label="y").complete() is False
    assert "stale runs not checked" not in caplog.text  # tried once per process, not per task


def test_pause_points_do_nothing_unless_named(monkeypatch, capsys):
    monkeypatch.delenv(faults.PAUSE_VARIABLE, raising=False)
    started = time.monotonic()
    faults.pause_point("stage:before-rename:TrainModel")
    monkeypatch.setenv(faults.PAUSE_VARIABLE, "prediction-log:mid-load, stage:before-rename:Other")
    monkeypatch.setenv(faults.SECONDS_VARIABLE, "0.01")
    faults.pause_point("stage:before-rename:TrainModel")
    faults.pause_point("stage:before-renamed")
    assert capsys.readouterr().err == "" and time.monotonic() - started < 0.5
    monkeypatch.setenv(faults.PAUSE_VARIABLE, "stage:before-rename")  # a name covers the points under it
    faults.pause_point("stage:before-rename:TrainModel")
    assert f"{faults.PAUSE_ANNOUNCEMENT} stage:before-rename:TrainModel" in capsys.readouterr().err
