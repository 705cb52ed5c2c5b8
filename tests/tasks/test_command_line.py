"""The `luigi` command as a person types it: exit codes, one-line errors, fast no-op reruns."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipeline.stages.training import read_history
from tasks.cli import main as overnight
from tests.tasks.support import subprocess_env

pytestmark = pytest.mark.slow
LUIGI = str(Path(sys.executable).with_name("luigi"))
# As a person runs it: in the repo root, where luigi.cfg holds the defaults (retcodes included)
# and the file named by LUIGI_CONFIG_PATH overrides them.
REPO_ROOT = Path(__file__).resolve().parents[2]


def luigi_command(config: Path, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LUIGI, "--module", "tasks", *arguments],
        cwd=REPO_ROOT,
        env=subprocess_env(config),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_missing_label_exits_non_zero_with_one_line_and_no_traceback(configure, tabular_csv, tmp_path):
    config = configure(dataset={"path": str(tabular_csv), "label": "species"})
    result = luigi_command(config, "TrainModel")
    assert result.returncode == 30, result.stderr[-2000:]
    assert "missing label column 'species'" in result.stderr
    assert "Traceback" not in result.stderr


def test_complete_rerun_imports_no_tensorflow(configure, digits_folder, tmp_path):
    config = configure(dataset={"path": str(digits_folder)})
    first = luigi_command(config, "TrainModel")
    assert first.returncode == 0, first.stderr[-3000:]
    # The same check Luigi makes, in a fresh interpreter: everything is complete, TensorFlow stays out.
    probe = (
        "import sys, luigi, tasks; "
        "result = luigi.build([tasks.TrainModel()], local_scheduler=True, detailed_summary=True); "
        "assert 'Did not run any tasks' in result.summary_text, result.summary_text; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; print('ok')"
    )
    rerun = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env=subprocess_env(config),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0 and rerun.stdout.strip() == "ok", rerun.stderr[-3000:]


def test_postgres_database_url_from_environment(configure, tabular_csv, tmp_path, database_url):
    config = configure(dataset={"path": str(tabular_csv), "label": "label"})
    env = dict(subprocess_env(config), OVERNIGHT_DATABASE_URL=database_url)
    result = subprocess.run(
        [LUIGI, "--module", "tasks", "EvaluateModel"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import sqlalchemy as sa

    from pipeline.store import database

    with database.connect(database_url).connect() as connection:
        statuses = dict(connection.execute(sa.text("SELECT task, status FROM runs")).all())
        test_metrics = {
            name
            for (name,) in connection.execute(
                sa.text("SELECT name FROM run_metrics WHERE split = 'test' AND slice = '' AND baseline = ''")
            )
        }
    assert set(statuses) == {
        "IngestData",
        "ValidateData",
        "SplitData",
        "FitPreprocessor",
        "TrainModel",
        "EvaluateModel",
    }
    assert set(statuses.values()) == {"succeeded"}
    assert {"accuracy", "f1_macro", "log_loss", "headline"} <= test_metrics


@pytest.fixture
def slow_epochs_csv(tmp_path) -> Path:
    """Enough rows that one epoch takes a noticeable fraction of a second on CPU."""
    rng = np.random.default_rng(3)
    rows = 40_000
    table = pd.DataFrame(rng.normal(size=(rows, 8)).round(4), columns=[f"x{i}" for i in range(8)])
    table["label"] = np.where(table["x0"] + table["x1"] > 0, "yes", "no")
    path = tmp_path / "raw" / "slow.csv"
    path.parent.mkdir(parents=True)
    table.to_csv(path, index=False)
    return path


def test_training_killed_with_sigkill_resumes_from_its_last_finished_epoch(configure, slow_epochs_csv, tmp_path):
    epochs = 8
    config = configure(
        dataset={"path": str(slow_epochs_csv), "label": "label"},
        TrainModel={"epochs": str(epochs), "batch_size": "32", "architecture": "mlp"},
    )
    data = tmp_path / "data" / "05_training"
    process = subprocess.Popen(
        [LUIGI, "--module", "tasks", "TrainModel"],
        cwd=REPO_ROOT,
        env=subprocess_env(config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    history = _wait_for_epochs(data, 2, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before_kill = len(read_history(history).get("epoch", []))
    assert 2 <= finished_before_kill < epochs, "the kill came too late to test resuming"
    assert not [p for p in data.iterdir() if p.is_dir() and p.name != ".work" and "-luigi-tmp-" not in p.name], (
        "a killed training must leave no finished-looking output"
    )

    rerun = luigi_command(config, "TrainModel")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (model_dir,) = [p for p in data.iterdir() if p.is_dir() and p.name != ".work" and "-luigi-tmp-" not in p.name]
    training = __import__("json").loads((model_dir / "training.json").read_text())
    # The checkpoint is written after the history row, and a checkpoint torn by the kill falls
    # back to the one before: training resumes at most two epochs behind the history.
    assert finished_before_kill - 2 <= training["resumed_from_epoch"] <= finished_before_kill
    assert training["resumed_from_epoch"] >= 1
    assert len(read_history(model_dir / "history.csv")["epoch"]) == epochs
    assert not list(data.glob("*-luigi-tmp-*")), "the rerun removes the killed attempt's temporary folder"
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


def _wait_for_epochs(data: Path, count: int, process: subprocess.Popen, timeout: float = 180) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be killed"
        for history in data.glob(".work/*/*/history.csv"):  # .work/<version>/<candidate>/
            try:
                if len(read_history(history).get("epoch", [])) >= count:
                    return history
            except (OSError, ValueError, KeyError):
                pass
        time.sleep(0.02)
    raise AssertionError(f"no {count} finished epochs within {timeout} s")


def test_overnight_help_lists_every_command_in_full_at_80_columns():
    result = CliRunner().invoke(overnight, ["--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:", 1)[1].strip().splitlines()
    assert len(commands) >= 15, result.output
    assert not [line for line in commands if line.rstrip().endswith(("...", "…"))], result.output
