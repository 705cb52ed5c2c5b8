"""`overnight runs`, `show` and `compare` as a person types them; a real run records its cost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from luigi.execution_summary import LuigiStatusCode

from pipeline.common.metrics import Metric
from pipeline.store import database, ledger
from pipeline.store.tables import runs as runs_table
from tasks.cli import main
from tests.tasks.support import build

REPO_ROOT = Path(__file__).resolve().parents[2]
WIDTH = 100


@pytest.fixture
def recorded(tmp_path, monkeypatch) -> dict[str, str]:
    """A SQLite ledger with two finished TrainModel runs and one long-named running run."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("OVERNIGHT_DATABASE_URL", url)
    engine = database.connect(url)
    output = tmp_path / "05_training" / "first"
    output.mkdir(parents=True)
    (output / "model.keras").write_bytes(b"keras")

    def start(task: str, params: dict, data_version: str, output_path: Path) -> str:
        return ledger.start_run(
            engine,
            task=task,
            params=params,
            version="f" * 16,
            data_version=data_version,
            output_path=output_path,
            repo_dir=REPO_ROOT,
        )

    first = start("TrainModel", {"epochs": "3", "architecture": "mlp"}, "d" * 64, output)
    ledger.finish_run(
        engine,
        first,
        status="succeeded",
        cpu_s=42.0,
        peak_memory_mb=900.0,
        cost=12345.678,
        metrics=[
            Metric("loss", 0.9, "train", epoch=1),
            Metric("loss", 0.4, "train", epoch=2),
            Metric("accuracy", 0.75, "test"),
            Metric("headline", 0.75, "test"),
            Metric("accuracy", 0.5, "test", slice="island=" + "n" * 150),
        ],
    )
    second = start("TrainModel", {"epochs": "30", "architecture": "mlp"}, "d" * 64, tmp_path / "missing")
    ledger.finish_run(
        engine,
        second,
        status="succeeded",
        cost=0.002,
        metrics=[Metric("accuracy", 0.8, "test"), Metric("headline", 0.8, "test")],
    )
    running = start("AVeryLongTaskNameThatNobodyWouldType" * 2, {"path": "x" * 300}, "e" * 64, tmp_path)
    base = datetime(2025, 11, 20, 8, 0, tzinfo=UTC)
    with engine.begin() as connection:
        for offset, run_id in enumerate((first, second, running)):
            connection.execute(
                sa.update(runs_table)
                .where(runs_table.c.run_id == run_id)
                .values(started_at=base + timedelta(minutes=offset))
            )
    yield {"first": first, "second": second, "running": running}
    database.dispose_all()


def invoke(*arguments: str):
    return CliRunner().invoke(main, list(arguments), catch_exceptions=False)


def test_runs_table_fits_a_terminal_newest_first(recorded):
    result = invoke("runs")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["run", "task", "night", "started", "status", "duration", "headline", "commit", "cost"]
    assert [line[:8] for line in lines[1:]] == [recorded["running"][:8], recorded["second"][:8], recorded["first"][:8]]
    assert all(len(line) <= WIDTH for line in lines), "\n".join(lines)
    assert "0.7500" in lines[3] and "12346" in lines[3] and "0.0020" in lines[2]


def test_runs_filters_and_formats_for_scripts(recorded):
    result = invoke("runs", "--format", "json", "--task", "TrainModel", "--limit", "5")

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [row["run_id"] for row in listed] == [recorded["second"], recorded["first"]]
    assert listed[1]["headline"] == 0.75 and listed[1]["cost"] == 12345.678
    assert listed[1]["data_version"] == "d" * 64 and listed[1]["started_at"] == "2025-11-20T08:00:00Z"

    csv_lines = invoke("runs", "--format", "csv", "--status", "running").stdout.splitlines()
    assert csv_lines[0].startswith("run_id,task,version,status,started_at")
    assert len(csv_lines) == 2 and csv_lines[1].startswith(recorded["running"] + ",AVeryLong")


def test_show_prints_everything_recorded(recorded):
    result = invoke("show", recorded["first"][:10])

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert recorded["first"] in text
    for expected in (
        "parameters",
        "epochs",
        "architecture",
        "hardware",
        "platform",
        "packages",
        "sqlalchemy",
        "model.keras",
        "metrics",
        "accuracy",
        "0.7500",
        "per epoch",
        "loss",
        "d" * 64,
        "2025-11-20T08:00:00Z",
        "900 MB",
        "42.0s",
        "12346",
    ):
        assert expected in text, expected
    assert all(len(line) <= WIDTH for line in text.splitlines())


def test_show_json_dumps_it_all(recorded):
    result = invoke("show", recorded["first"], "--format", "json")

    details = json.loads(result.stdout)
    assert details["run_id"] == recorded["first"]
    assert details["params"] == {"epochs": "3", "architecture": "mlp"}
    assert details["files"] == [{"path": "model.keras", "bytes": 5}]
    assert details["metrics"]["final"] == [
        {"split": "test", "name": "accuracy", "value": 0.75},
        {"split": "test", "name": "headline", "value": 0.75},
    ]
    assert details["metrics"]["history"][0]["best"] == 0.4
    assert set(details["hardware"]) >= {"platform", "gpus"} and "sqlalchemy" in details["packages"]


def test_compare_shows_the_changed_parameter_and_metric_deltas(recorded):
    result = invoke("compare", recorded["first"][:10], recorded["second"][:10])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    (epochs,) = [line for line in lines if line.split()[:1] == ["epochs"]]
    assert epochs.split() == ["epochs", "3", "30"]
    assert not [line for line in lines if line.split()[:1] == ["architecture"]]  # unchanged: not listed
    (accuracy,) = [line for line in lines if line.split()[:3] == ["test", "accuracy", "0.7500"]]
    assert accuracy.split()[3:] == ["0.8000", "+0.0500"]
    assert all(len(line) <= WIDTH for line in lines)

    comparison = json.loads(invoke("compare", recorded["first"], recorded["second"], "--format", "json").stdout)
    assert comparison["parameters"] == [{"name": "epochs", "a": "3", "b": "30", "only_in": None}]
    csv_text = invoke("compare", recorded["first"], recorded["second"], "--format", "csv").stdout
    assert "parameter,,,epochs,3,30," in csv_text.splitlines()


@pytest.mark.parametrize("command", [["show", "0123456789abcdef"], ["compare", "zz", "zz"], ["show", ""]])
def test_unknown_run_is_a_one_line_error(recorded, command):
    result = invoke(*command)

    assert result.exit_code != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_real_run_records_cpu_and_memory(configure, tabular_csv, tmp_path):
    import tasks

    configure(
        dataset={"path": str(tabular_csv), "label": "label"},
        overnight={"price_per_hour": "3.6", "gpu_price_per_hour": "1000"},
    )
    result = build(tasks.SplitData())
    assert result.status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY), result.summary_text

    engine = database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}")
    with engine.connect() as connection:
        rows = connection.execute(sa.select(runs_table).where(runs_table.c.task == "SplitData")).all()
    (run,) = rows
    assert run.status == "succeeded"
    assert run.cpu_s > 0 and run.peak_memory_mb > 0
    # SplitData is no GPU task: 0 GPU seconds on a GPU machine, NULL without a GPU.
    assert run.gpu_s == (0.0 if run.gpu_name else None)
    # 3.6 per hour = 0.001 per second of wall time (measured around the work, within duration_s).
    assert 0 < run.cost <= run.duration_s * 0.001 + 1e-9


@pytest.mark.parametrize("task, gpu_s", [("TrainModel", 1800.0), ("BatchPredict", 1800.0), ("SplitData", 0.0)])
def test_gpu_tasks_pay_for_gpu_seconds(monkeypatch, task, gpu_s):
    from types import SimpleNamespace

    import tasks
    from pipeline.common import environment
    from tasks.base import RecordedTask

    monkeypatch.setattr(environment, "gpu_name", lambda: "NVIDIA H100 80GB HBM3")
    meter = SimpleNamespace(stop=lambda: environment.Usage(wall_s=1800.0, cpu_s=900.0, peak_memory_mb=64.0))
    used = RecordedTask._usage(
        SimpleNamespace(gpu=getattr(tasks, task).gpu), meter, {"price_per_hour": 2.0, "gpu_price_per_hour": 4.0}
    )

    assert used == {
        "cpu_s": 900.0,
        "peak_memory_mb": 64.0,
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "gpu_s": gpu_s,
        "cost": pytest.approx(1.0 + gpu_s / 3600 * 4.0),
    }


def test_gpu_name_is_the_first_visible_gpu(monkeypatch):
    from pipeline.common import environment

    gpus = ["NVIDIA H100 80GB HBM3 (81559 MiB)", "NVIDIA A100 (40960 MiB)"]
    monkeypatch.setattr(environment, "_hardware", lambda: {"gpus": gpus})
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert environment.gpu_name() == "NVIDIA H100 80GB HBM3"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # TensorFlow sees no GPU
    assert environment.gpu_name() is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    gpus[:] = []
    assert environment.gpu_name() is None


def test_tables_print_four_decimals_and_whole_seconds_and_scripts_get_every_digit(capsys):
    import datetime

    from tasks.cli.app import print_rows

    when = datetime.datetime(2026, 12, 1, 15, 15, 4, 272363, tzinfo=datetime.UTC)
    rows = [{"version": "e79cb41b", "headline": 0.973244123, "created_at": when}]
    print_rows(rows, "table")
    table = capsys.readouterr().out
    assert "0.9732" in table and "2026-12-01 15:15:04" in table
    assert "0.973244" not in table and ".272363" not in table
    print_rows(rows, "json")
    assert "0.973244123" in capsys.readouterr().out


def test_runs_show_each_night_and_start_and_a_training_run_s_validation_score(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("OVERNIGHT_DATABASE_URL", url)
    engine = database.connect(url)
    common = {"version": "f" * 16, "data_version": "d" * 64, "output_path": tmp_path, "repo_dir": REPO_ROOT}
    night = ledger.start_run(engine, task="Nightly", params={"date": "2026-11-05", "model_version": "m"}, **common)
    ledger.finish_run(engine, night, status="succeeded")
    training = ledger.start_run(engine, task="TrainModel", params={"epochs": "2"}, **common)
    ledger.finish_run(engine, training, status="succeeded", metrics=[Metric("accuracy", 0.9712, "validation")])
    with engine.begin() as connection:
        moment = datetime(2026, 11, 6, 2, 30, tzinfo=UTC)
        connection.execute(sa.update(runs_table).where(runs_table.c.run_id == night).values(started_at=moment))
    lines = invoke("runs").stdout.splitlines()
    nightly = next(line for line in lines if line.startswith(night[:8]))
    assert "11-05" in nightly and "11-06 02:30" in nightly
    trained = next(line for line in lines if line.startswith(training[:8]))
    assert "0.9712v" in trained and lines[-1].startswith("v: validation score")
    listed = json.loads(invoke("runs", "--format", "json").stdout)
    assert {row["task"]: (row["night"], row["headline_split"]) for row in listed} == {
        "Nightly": ("2026-11-05", None),
        "TrainModel": (None, "validation"),
    }
    database.dispose_all()
