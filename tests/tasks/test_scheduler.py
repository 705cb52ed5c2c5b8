"""A real luigid on loopback: TuneModel's trials run by two worker processes, each exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.store import database
from tests.tasks.support import subprocess_env

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).with_name("luigi"))
TRIALS = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(port: int, method: str, **data) -> dict:
    query = urllib.parse.urlencode({"data": json.dumps(data)})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/{method}?{query}", timeout=10) as response:
        return json.loads(response.read())["response"]


class Luigid:
    """scripts/scheduler.sh on a free loopback port; restartable on the same state."""

    def __init__(self, state: Path):
        self.port, self.state, self.process = free_port(), state, None

    def start(self) -> None:
        env = dict(os.environ, OVERNIGHT_SCHEDULER_PORT=str(self.port), OVERNIGHT_SCHEDULER_DIR=str(self.state))
        self.process = subprocess.Popen(
            [str(REPO_ROOT / "scripts" / "scheduler.sh")],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2).close()
                return
            except OSError as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"luigid did not start: {self.process.stderr.read()[-2000:]}") from error
                time.sleep(0.2)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)  # luigid saves its state on SIGTERM
        self.process.wait(timeout=30)


@pytest.fixture
def scheduler(tmp_path):
    luigid = Luigid(tmp_path / "scheduler")
    luigid.start()
    yield luigid
    if luigid.process.poll() is None:
        luigid.stop()


def test_tune_model_against_a_real_luigid_runs_every_trial_once(configure, digits_folder, tmp_path, scheduler):
    port = scheduler.port
    config = configure(
        core={"local_scheduler": "false", "default_scheduler_host": "127.0.0.1", "default_scheduler_port": str(port)},
        dataset={"path": str(digits_folder)},
        TrainModel={"epochs": "1", "architecture": "cnn"},
        TuneModel={"space": "learning_rate: 0.001, 0.003; batch_size: 32, 64"},
    )
    command = [LUIGI, "--module", "tasks", "TuneModel", "--workers", "2"]
    first = subprocess.run(
        command, cwd=REPO_ROOT, env=subprocess_env(config), capture_output=True, text=True, timeout=500
    )
    assert first.returncode == 0, first.stderr[-4000:]
    again = subprocess.run(
        command, cwd=REPO_ROOT, env=subprocess_env(config), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "Did not run any tasks" in again.stderr, again.stderr[-3000:]

    with database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}").connect() as connection:
        trained = connection.execute(sa.text("SELECT version, status, pid FROM runs WHERE task = 'TrainModel'")).all()
    assert len(trained) == TRIALS and len({version for version, _, _ in trained}) == TRIALS
    assert {status for _, status, _ in trained} == {"succeeded"}
    assert len({pid for _, _, pid in trained}) > 1, "two worker processes shared the trials"

    done = api(port, "task_list", status="DONE", upstream_status="", search="")
    families = [task["name"] for task in done.values()]
    assert families.count("TuneTrial") == TRIALS and "TuneModel" in families

    # The scheduler's history survives a restart on the same state file.
    scheduler.stop()
    assert (scheduler.state / "state.pickle").exists()
    scheduler.start()
    remembered = api(scheduler.port, "task_list", status="DONE", upstream_status="", search="")
    assert [task["name"] for task in remembered.values()].count("TuneTrial") == TRIALS


def test_naming_a_scheduler_on_the_command_line_sends_the_tasks_to_it(configure, tabular_csv, scheduler):
    # The test config (like luigi.cfg) says local_scheduler = true: the options must win over it.
    config = configure(dataset={"path": str(tabular_csv)})
    port = str(scheduler.port)
    command = [LUIGI, "--module", "tasks", "TrainModel", "--scheduler-host", "127.0.0.1", "--scheduler-port", port]
    trained = subprocess.run(
        command, cwd=REPO_ROOT, env=subprocess_env(config), capture_output=True, text=True, timeout=300
    )
    assert trained.returncode == 0, trained.stderr[-4000:]
    done = api(scheduler.port, "task_list", status="DONE", upstream_status="", search="")
    assert "TrainModel" in [task["name"] for task in done.values()]


def test_make_scheduler_says_the_gpus_it_found_and_how_a_worker_joins(tmp_path):
    env = dict(os.environ, OVERNIGHT_SCHEDULER_PORT=str(free_port()), OVERNIGHT_SCHEDULER_DIR=str(tmp_path / "s"))
    process = subprocess.Popen(
        [str(REPO_ROOT / "scripts" / "scheduler.sh")],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(3)]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    found = (
        subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True) if _has("nvidia-smi") else None
    )
    cards = found.stdout.count("GPU ") if found is not None and found.returncode == 0 else 0
    assert f"gpu resource {cards} (nvidia-smi lists {cards} card(s) here" in lines[1], lines
    assert (
        f"luigi --module tasks TrainModel --scheduler-host 127.0.0.1 --scheduler-port {env['OVERNIGHT_SCHEDULER_PORT']}"
        in lines[2]
    )


def _has(command: str) -> bool:
    import shutil

    return shutil.which(command) is not None
