"""The run ledger (pipeline.store.ledger), on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.common.metrics import Metric
from pipeline.store import ledger
from pipeline.store.tables import datasets, run_metrics, runs

REPO_ROOT = Path(__file__).resolve().parents[2]


def _start(engine: sa.Engine, task: str = "TrainModel", **overrides) -> str:
    arguments = {
        "task": task,
        "params": {"epochs": 3, "architecture": "mlp"},
        "version": "abc123",
        "data_version": "data-1",
        "output_path": "data/05_training/abc123",
        "repo_dir": REPO_ROOT,
    }
    return ledger.start_run(engine, **{**arguments, **overrides})


def _run_row(engine: sa.Engine, run_id: str):
    with engine.connect() as connection:
        return connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).one()


def _metric_rows(engine: sa.Engine, run_id: str) -> list[tuple]:
    query = (
        sa.select(
            run_metrics.c.split, run_metrics.c.slice, run_metrics.c.name, run_metrics.c.value, run_metrics.c.epoch
        )
        .where(run_metrics.c.run_id == run_id)
        .order_by(run_metrics.c.id)
    )
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def _dead_pid() -> int:
    # A child that has exited and been reaped: its pid names no process.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_start_run_records_where_and_what(engine):
    run_id = _start(engine, params={"epochs": 3, "url": "postgresql://u:pw@h/db", "lr": math.nan})

    row = _run_row(engine, run_id)

    assert len(run_id) == 32 and int(run_id, 16) >= 0
    assert row.status == "running"
    assert row.task == "TrainModel" and row.version == "abc123" and row.data_version == "data-1"
    assert row.params == {"epochs": 3, "url": "postgresql://u:***@h/db", "lr": None}
    assert row.host == socket.gethostname() and row.pid == os.getpid()
    assert row.started_at.tzinfo == UTC and row.finished_at is None
    assert set(row.hardware) == {"platform", "python", "cpu_count", "memory_gb", "gpus", "cards"}
    assert row.packages["sqlalchemy"] == sa.__version__
    assert row.git_commit is None or len(row.git_commit) == 40


def test_finish_run_round_trip_with_metrics(engine):
    run_id = _start(engine)
    metrics = [
        Metric("loss", 0.9, "train", epoch=1),
        Metric("loss", 0.5, "train", epoch=2),
        Metric("val_loss", math.nan, "validation", epoch=2),
        Metric("accuracy", 0.75, "test"),
        Metric("accuracy", 0.5, "test", slice="island=Biscoe"),
        Metric("log_loss", math.inf, "test"),
    ]

    ledger.finish_run(engine, run_id, status="succeeded", metrics=metrics, rows_in=100, rows_rejected=2)

    row = _run_row(engine, run_id)
    assert row.status == "succeeded"
    assert row.finished_at.tzinfo == UTC and row.finished_at >= row.started_at
    assert row.duration_s == pytest.approx((row.finished_at - row.started_at).total_seconds(), abs=1e-3)
    assert (row.rows_in, row.rows_rejected, row.error) == (100, 2, None)
    assert _metric_rows(engine, run_id) == [
        ("train", "", "loss", 0.9, 1),
        ("train", "", "loss", 0.5, 2),
        ("validation", "", "val_loss", None, 2),  # NaN stored as NULL
        ("test", "", "accuracy", 0.75, None),
        ("test", "island=Biscoe", "accuracy", 0.5, None),
        ("test", "", "log_loss", None, None),  # inf stored as NULL
    ]
    read_back = ledger.metrics_of(engine, run_id)
    assert [metric for metric in read_back if not math.isnan(metric.value)] == [
        metric for metric in metrics if math.isfinite(metric.value)
    ]
    assert [metric.name for metric in read_back if math.isnan(metric.value)] == ["val_loss", "log_loss"]


def test_finish_run_is_one_transaction(engine):
    run_id = _start(engine)

    def fail_on_metrics(connection, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO RUN_METRICS"):
            raise RuntimeError("disk full")

    sa.event.listen(engine, "before_cursor_execute", fail_on_metrics)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            ledger.finish_run(engine, run_id, status="succeeded", metrics=[Metric("accuracy", 1.0, "test")])
    finally:
        sa.event.remove(engine, "before_cursor_execute", fail_on_metrics)

    row = _run_row(engine, run_id)
    assert (row.status, row.finished_at, row.duration_s) == ("running", None, None)
    assert _metric_rows(engine, run_id) == []


@pytest.mark.parametrize("status", ["running", "abandoned", "ok", ""])
def test_finish_run_rejects_a_bad_status(engine, status):
    run_id = _start(engine)

    with pytest.raises(ValueError, match="succeeded, failed"):
        ledger.finish_run(engine, run_id, status=status, metrics=[Metric("accuracy", 1.0, "test")])

    assert _run_row(engine, run_id).status == "running"
    assert _metric_rows(engine, run_id) == []


def test_finish_run_twice_or_unknown_raises(engine):
    run_id = _start(engine)
    ledger.finish_run(engine, run_id, status="failed", error="boom")

    with pytest.raises(ValueError, match="already failed"):
        ledger.finish_run(engine, run_id, status="succeeded", metrics=[Metric("accuracy", 1.0, "test")])
    with pytest.raises(LookupError):
        ledger.finish_run(engine, "0" * 32, status="succeeded")
    assert _metric_rows(engine, run_id) == []


def test_error_text_never_stores_a_password(engine):
    run_id = _start(engine)

    ledger.finish_run(
        engine,
        run_id,
        status="failed",
        error="OperationalError: postgresql+psycopg2://overnight:hunter2@db:5432/prod refused",
    )

    row = _run_row(engine, run_id)
    assert row.status == "failed"
    assert "hunter2" not in row.error
    assert "postgresql+psycopg2://overnight:***@db:5432/prod" in row.error


def test_metric_checks_its_split_and_sizes():
    with pytest.raises(ValueError, match="train, validation, test, batch"):
        Metric("accuracy", 1.0)
    with pytest.raises(ValueError, match="train, validation, test, batch"):
        Metric("accuracy", 1.0, "val")
    with pytest.raises(ValueError, match="1 to 64"):
        Metric("x" * 65, 1.0, "test")
    with pytest.raises(ValueError, match="over 200"):
        Metric("accuracy", 1.0, "test", slice="s" * 201)


def _dataset_rows(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        return connection.execute(sa.select(datasets)).all()


def test_record_dataset_twice_keeps_one_row(engine):
    arguments = {
        "data_version": "d" * 64,
        "path": Path("data/01_raw/penguins.csv"),
        "fingerprint": "f" * 64,
        "rows": 344,
        "columns": ("island", "bill_length_mm", "species"),
        "schema": {"island": "categorical", "bill_length_mm": "numeric", "species": "categorical"},
    }

    ledger.record_dataset(engine, **arguments)
    ledger.record_dataset(engine, **arguments)
    ledger.record_dataset(engine, **{**arguments, "rows": 1})

    (row,) = _dataset_rows(engine)
    assert row.path == "data/01_raw/penguins.csv" and row.rows == 344
    assert row.columns == ["island", "bill_length_mm", "species"]
    assert row.schema == arguments["schema"]
    assert row.created_at.tzinfo == UTC


def test_record_dataset_tolerates_a_concurrent_insert(engine, database_url):
    # Another process inserts the same version between our check and our insert.
    other = sa.create_engine(database_url, poolclass=sa.pool.NullPool)

    def insert_first(connection, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO DATASETS"):
            with other.begin() as other_connection:
                other_connection.execute(sa.insert(datasets), {"data_version": "v1", "rows": 7})

    sa.event.listen(engine, "before_cursor_execute", insert_first)
    try:
        ledger.record_dataset(engine, data_version="v1", path="p", fingerprint="f", rows=7, columns=[], schema={})
    finally:
        sa.event.remove(engine, "before_cursor_execute", insert_first)
        other.dispose()

    assert [(row.data_version, row.rows) for row in _dataset_rows(engine)] == [("v1", 7)]


def test_mark_abandoned_flips_only_dead_local_runs(engine):
    dead = _start(engine)
    alive = _start(engine)
    elsewhere = _start(engine)
    finished = _start(engine)
    dead_pid = _dead_pid()
    with engine.begin() as connection:
        connection.execute(sa.update(runs).where(runs.c.run_id.in_([dead, elsewhere, finished])).values(pid=dead_pid))
        connection.execute(sa.update(runs).where(runs.c.run_id == elsewhere).values(host="another-host"))
    ledger.finish_run(engine, finished, status="succeeded")

    assert ledger.mark_abandoned(engine) == 1
    assert ledger.mark_abandoned(engine) == 0

    statuses = {run_id: _run_row(engine, run_id).status for run_id in (dead, alive, elsewhere, finished)}
    assert statuses == {dead: "abandoned", alive: "running", elsewhere: "running", finished: "succeeded"}
    abandoned = _run_row(engine, dead)
    assert abandoned.finished_at is not None and abandoned.duration_s >= 0
    assert str(dead_pid) in abandoned.error


def test_a_killed_process_not_yet_reaped_counts_as_dead(engine):
    zombie = subprocess.Popen(["sleep", "60"])
    run_id = _start(engine)
    with engine.begin() as connection:
        connection.execute(sa.update(runs).where(runs.c.run_id == run_id).values(pid=zombie.pid))
    zombie.send_signal(signal.SIGKILL)
    try:
        time.sleep(0.2)  # killed, not waited for: a zombie until its parent reaps it
        assert ledger.mark_abandoned(engine) == 1
    finally:
        zombie.wait()
    assert _run_row(engine, run_id).status == "abandoned"


def test_another_host_s_run_is_settled_once_its_heartbeat_is_older_than_the_lease(engine):
    import datetime

    silent, beating = _start(engine), _start(engine)
    now = datetime.datetime.now(UTC)
    with engine.begin() as connection:
        for run_id, last in ((silent, now - datetime.timedelta(seconds=100)), (beating, now)):
            connection.execute(
                sa.update(runs).where(runs.c.run_id == run_id).values(host="host-9", pid=4242, heartbeat_at=last)
            )

    assert ledger.mark_abandoned(engine) == 0  # no lease given: another host's pid means nothing here
    assert ledger.mark_abandoned(engine, lease_s=60) == 1
    row = _run_row(engine, silent)
    assert row.status == "abandoned" and "host-9" in row.error and "lease 60 s" in row.error
    assert _run_row(engine, beating).status == "running"


def test_a_running_run_beats_until_it_stops(engine):
    run_id = _start(engine)
    started = _run_row(engine, run_id).heartbeat_at
    assert started == _run_row(engine, run_id).started_at
    with ledger.Heartbeat(engine, run_id, every_s=0.05):
        time.sleep(0.4)
    last = _run_row(engine, run_id).heartbeat_at
    assert last > started
    time.sleep(0.2)
    assert _run_row(engine, run_id).heartbeat_at == last  # stopped with the block


def test_latest_run_picks_the_newest_with_the_status(engine):
    assert ledger.latest_run(engine, "TrainModel") is None
    first = _start(engine)
    ledger.finish_run(engine, first, status="succeeded")
    second = _start(engine)
    ledger.finish_run(engine, second, status="succeeded")
    failed = _start(engine)
    ledger.finish_run(engine, failed, status="failed")
    _start(engine, task="EvaluateModel")

    latest = ledger.latest_run(engine, "TrainModel")

    assert isinstance(latest, dict)
    assert latest["run_id"] == second and latest["status"] == "succeeded"
    assert ledger.latest_run(engine, "TrainModel", status="failed")["run_id"] == failed
    assert ledger.latest_run(engine, "EvaluateModel") is None
