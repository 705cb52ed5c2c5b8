"""A real luigid on loopback: TuneModel's trials shared by two workers, each run exactly once; two
data sets side by side on one scheduler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.store import database
from tests.tasks.luigid import Luigid, api, free_port, quick_to_take_over
from tests.tasks.support import subprocess_env

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).with_name("luigi"))
TRIALS = 4


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
    # Two workers started at once on a fresh data folder, as two hosts' cron would: the second
    # finds the first one's IngestData running and stays for its share of the trials.
    command = [LUIGI, "--module", "tasks", "TuneModel"]
    workers = [
        subprocess.Popen(command, cwd=REPO_ROOT, env=subprocess_env(config), stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=500)
        assert worker.returncode == 0, stderr[-4000:]  # whichever worker ran what: the graph is complete
    again = subprocess.run(
        command, cwd=REPO_ROOT, env=subprocess_env(config), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "Did not run any tasks" in again.stderr, again.stderr[-3000:]

    with database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}").connect() as connection:
        trained = connection.execute(sa.text("SELECT version, status, pid FROM runs WHERE task = 'TrainModel'")).all()
    assert len(trained) == TRIALS and len({version for version, _, _ in trained}) == TRIALS
    assert {status for _, status, _ in trained} == {"succeeded"}
    assert len({pid for _, _, pid in trained}) > 1, "the two workers shared the trials"

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


def test_two_data_sets_share_one_luigid_without_blocking_each_other(configure, tabular_csv, tmp_path, scheduler):
    # Two data sets, each with its own data root and database; IngestData has no parameters.
    other_csv = tmp_path / "other" / "loans.csv"
    other_csv.parent.mkdir()
    other_csv.write_bytes(tabular_csv.read_bytes())
    settings = {}
    for name, csv in (("first", tabular_csv), ("second", other_csv)):
        root = tmp_path / name
        config = configure(
            overnight={"data_root": str(root), "database_url": f"sqlite:///{root / 'overnight.db'}"},
            dataset={"path": str(csv)},
        )
        settings[name] = config.rename(tmp_path / f"{name}.cfg")
    command = [LUIGI, "--module", "tasks", "ValidateData", "--scheduler-host", "127.0.0.1"]
    command += ["--scheduler-port", str(scheduler.port)]

    # The first data set's IngestData is running, held just before its folder is renamed into place...
    held = {"OVERNIGHT_TEST_PAUSE_AT": "stage:before-rename:IngestData", "OVERNIGHT_TEST_PAUSE_SECONDS": "20"}
    first = subprocess.Popen(
        command, cwd=REPO_ROOT, env={**subprocess_env(settings["first"]), **held}, stderr=subprocess.PIPE, text=True
    )
    for line in first.stderr:
        if "overnight-test-pause:" in line:
            break
    else:
        raise AssertionError(f"the first data set never reached IngestData: exit {first.wait()}")
    # ...when the second data set's worker asks the same scheduler for its own IngestData.
    second = subprocess.run(
        command, cwd=REPO_ROOT, env=subprocess_env(settings["second"]), capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert first.wait(timeout=300) == 0, first.stderr.read()[-3000:]
    for name in ("first", "second"):
        assert list((tmp_path / name / "02_validation").iterdir()), name
    done = api(scheduler.port, "task_list", status="DONE", upstream_status="", search="IngestData")
    assert len(done) == 2, done


def test_a_killed_worker_s_task_is_taken_over_by_the_worker_still_waiting(configure, tabular_csv, tmp_path):
    luigid = quick_to_take_over(tmp_path / "scheduler", tmp_path / "fast-prune")
    luigid.start()
    try:
        config = configure(dataset={"path": str(tabular_csv)})
        command = [LUIGI, "--module", "tasks", "ValidateData", "--scheduler-host", "127.0.0.1"]
        command += ["--scheduler-port", str(luigid.port)]
        held = {"OVERNIGHT_TEST_PAUSE_AT": "stage:before-rename:IngestData", "OVERNIGHT_TEST_PAUSE_SECONDS": "300"}
        doomed = subprocess.Popen(
            command, cwd=REPO_ROOT, env={**subprocess_env(config), **held}, stderr=subprocess.PIPE, text=True
        )
        for line in doomed.stderr:
            if "overnight-test-pause:" in line:
                break
        waiting = subprocess.Popen(
            command, cwd=REPO_ROOT, env=subprocess_env(config), stderr=subprocess.PIPE, text=True
        )
        time.sleep(5)  # the second worker has asked for work and waits for the first one's IngestData
        doomed.kill()
        killed = time.monotonic()
        _, stderr = waiting.communicate(timeout=180)
        taken_over_s = time.monotonic() - killed
    finally:
        luigid.stop()
    assert waiting.returncode == 0, stderr[-3000:]
    assert taken_over_s < 40, taken_over_s
    with database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}").connect() as connection:
        ingested = connection.execute(sa.text("SELECT status, pid FROM runs WHERE task = 'IngestData'")).all()
    assert sorted(status for status, _ in ingested) == ["abandoned", "succeeded"], ingested
    assert {pid for status, pid in ingested if status == "abandoned"} == {doomed.pid}


def test_a_backfill_naming_a_scheduler_goes_to_it_and_names_its_data_set(configure, tabular_csv):
    # RangeDaily is the root task: Luigi builds its scheduler before any night of ours exists.
    config = configure(dataset={"path": str(tabular_csv)})
    code = (
        "import json, luigi, tasks\n"
        "from luigi.cmdline_parser import CmdlineParser\n"
        "argv = ['RangeDaily', '--of', 'Nightly', '--start', '2026-11-01', '--stop', '2026-11-03',\n"
        "        '--scheduler-host', '127.0.0.1']\n"
        "with CmdlineParser.global_instance(argv) as parser:\n"
        "    task = parser.get_task_obj()\n"
        "config = luigi.configuration.get_config()\n"
        "print(json.dumps([type(task).__module__, task.task_id, config.get('core', 'local_scheduler'),\n"
        "                  config.get('worker', 'keep_alive')]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(config), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    module, task_id, local_scheduler, keep_alive = json.loads(done.stdout.splitlines()[-1])
    assert module == "tasks.backfill" and (local_scheduler, keep_alive) == ("false", "true")
    other = configure(dataset={"path": str(tabular_csv.parent)})  # another data set, same nights
    again = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(other), capture_output=True, text=True
    )
    assert json.loads(again.stdout.splitlines()[-1])[1] != task_id  # two backfills, two tasks


def test_a_task_that_fails_on_another_worker_fails_this_one_too(configure, tmp_path):
    # Workers of a central scheduler try a failed task once more after retry_delay (5 s here)
    # before luigid disables it: both exit when it has failed twice.
    luigid = quick_to_take_over(tmp_path / "scheduler", tmp_path / "fast-prune")
    luigid.start()
    try:
        env = subprocess_env(configure()) | {"PYTHONPATH": str(REPO_ROOT)}
        command = [LUIGI, "--module", "tests.tasks.stand_in_tasks", "FailLater", "--scheduler-host", "127.0.0.1"]
        command += ["--scheduler-port", str(luigid.port)]
        first = subprocess.Popen(
            [*command, "--lock-pid-dir", str(tmp_path / "one")], cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE
        )
        time.sleep(2.5)  # the first worker runs it; the second finds it running
        second = subprocess.run(
            [*command, "--lock-pid-dir", str(tmp_path / "two")], cwd=REPO_ROOT, env=env, capture_output=True, text=True
        )
        _, first_stderr = first.communicate(timeout=90)
    finally:
        luigid.stop()
    assert first.returncode == 30, first_stderr[-3000:]
    # Not 10 ("already running"): the graph this worker asked for failed, wherever it ran.
    assert second.returncode == 30, second.stderr[-3000:]
