"""The run ledger: every task execution is a row in ``runs``, its figures rows in
``run_metrics``, and every data version a row in ``datasets``.

A Luigi adapter calls :func:`start_run` before a task's work and :func:`finish_run` after it;
this module knows nothing of Luigi. SQLAlchemy Core with bound parameters only, so the same
code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from pipeline.common import environment
from pipeline.common.clock import utc_now
from pipeline.common.jsonvalues import finite_or_none, jsonable
from pipeline.common.metrics import Metric
from pipeline.common.secrets import redact_secrets
from pipeline.store.tables import datasets, run_metrics, runs

logger = logging.getLogger(__name__)

FINAL_STATUSES = ("succeeded", "failed")
_MAX_GPU_NAME = runs.c.gpu_name.type.length


def start_run(
    engine: sa.Engine,
    *,
    task: str,
    params: dict,
    version: str,
    data_version: str | None,
    output_path: str | Path,
    repo_dir: str | Path,
) -> str:
    """Insert a ``running`` row for a task execution and return its new run_id (uuid4 hex).

    Git state, hardware, package versions, host and pid are filled in here. ``params`` is
    stored as JSON: values JSON cannot hold become strings, NaN becomes null, and passwords
    in URLs are masked.
    """
    run_id = uuid.uuid4().hex
    row = {
        "run_id": run_id,
        "task": task,
        "params": jsonable(params),
        "version": version,
        "status": "running",
        "git_commit": environment.git_commit(repo_dir),
        "git_dirty": environment.git_dirty(repo_dir),
        "data_version": data_version,
        "hardware": environment.hardware(),
        "packages": environment.packages(),
        "output_path": str(output_path),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": utc_now(),
    }
    row["heartbeat_at"] = row["started_at"]
    with engine.begin() as connection:
        connection.execute(sa.insert(runs), row)
    logger.info("run %s of %s started", run_id, task)
    return run_id


def finish_run(
    engine: sa.Engine,
    run_id: str,
    *,
    status: str,
    metrics: Iterable[Metric] = (),
    rows_in: int | None = None,
    rows_rejected: int | None = None,
    error: str | None = None,
    cpu_s: float | None = None,
    peak_memory_mb: float | None = None,
    gpu_name: str | None = None,
    gpu_s: float | None = None,
    cost: float | None = None,
) -> None:
    """Close a run and store its metrics and resource use, all in one transaction.

    NaN and infinite metric values are stored as NULL, as are NaN or infinite resource
    figures; passwords in ``error`` are masked. ``cost`` is an estimate in the currency of the
    configured prices (see :func:`estimate_cost`).

    Raises:
        ValueError: ``status`` is not succeeded or failed, or the run is already finished.
        LookupError: no run has this run_id.
    """
    if status not in FINAL_STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(FINAL_STATUSES)}")
    metric_rows = [_metric_row(run_id, metric) for metric in metrics]
    finished_at = utc_now()
    with engine.begin() as connection:
        current = connection.execute(sa.select(runs.c.status, runs.c.started_at).where(runs.c.run_id == run_id)).first()
        if current is None:
            raise LookupError(f"no run {run_id!r} in the ledger")
        # "abandoned" may be finished: mark_abandoned can misjudge a run whose pid was reused.
        # Finishing twice would duplicate its metrics.
        if current.status in FINAL_STATUSES:
            raise ValueError(f"run {run_id} is already {current.status}")
        connection.execute(
            sa.update(runs)
            .where(runs.c.run_id == run_id)
            .values(
                status=status,
                finished_at=finished_at,
                duration_s=(finished_at - current.started_at).total_seconds(),
                rows_in=_optional_int(rows_in),
                rows_rejected=_optional_int(rows_rejected),
                error=redact_secrets(error) if error is not None else None,
                cpu_s=finite_or_none(cpu_s),
                peak_memory_mb=finite_or_none(peak_memory_mb),
                gpu_name=gpu_name[:_MAX_GPU_NAME] if gpu_name is not None else None,
                gpu_s=finite_or_none(gpu_s),
                cost=finite_or_none(cost),
            )
        )
        if metric_rows:
            connection.execute(sa.insert(run_metrics), metric_rows)
    logger.info("run %s %s with %d metrics", run_id, status, len(metric_rows))


def estimate_cost(
    wall_s: float, gpu_s: float | None = None, *, price_per_hour: float = 0.0, gpu_price_per_hour: float = 0.0
) -> float:
    """Estimated cost of a run: wall hours at the machine's price plus GPU hours at the GPU's.

    Raises:
        ValueError: a negative price or duration.
    """
    for name, value in (
        ("wall_s", wall_s),
        ("gpu_s", gpu_s or 0.0),
        ("price_per_hour", price_per_hour),
        ("gpu_price_per_hour", gpu_price_per_hour),
    ):
        if not value >= 0:  # also catches NaN
            raise ValueError(f"{name} must be zero or more, not {value!r}")
    return wall_s / 3600 * price_per_hour + (gpu_s or 0.0) / 3600 * gpu_price_per_hour


def record_dataset(
    engine: sa.Engine,
    *,
    data_version: str,
    path: str | Path,
    fingerprint: str,
    rows: int,
    columns: Iterable[str],
    schema: dict[str, str],
) -> None:
    """Record a data version once; recording it again is a no-op, also from two processes."""
    row = {
        "data_version": data_version,
        "path": str(path),
        "fingerprint": fingerprint,
        "rows": int(rows),
        "columns": jsonable(list(columns)),
        "schema": jsonable(schema),
        "created_at": utc_now(),
    }
    try:
        with engine.begin() as connection:
            existing = connection.execute(
                sa.select(datasets.c.fingerprint).where(datasets.c.data_version == data_version)
            ).first()
            if existing is None:
                connection.execute(sa.insert(datasets), row)
                return
    except sa_exc.IntegrityError:
        # Another process inserted the same version between our check and our insert.
        logger.debug("data version %s was recorded concurrently", data_version)
        return
    if existing.fingerprint != fingerprint:
        logger.warning(
            "data version %s is recorded with fingerprint %s, not %s; keeping the first",
            data_version,
            existing.fingerprint,
            fingerprint,
        )


def mark_abandoned(engine: sa.Engine, lease_s: float | None = None) -> int:
    """Mark ``running`` runs that nobody runs any more as ``abandoned``: this host's whose process
    is gone, and (with ``lease_s``) any host's whose heartbeat is older than the lease.

    A pid is judged only on its own host, since it means nothing elsewhere; a heartbeat anywhere.
    Runs without a heartbeat (recorded before it existed) are judged by their pid alone.

    Returns:
        How many runs were marked.
    """
    host = socket.gethostname()
    now = utc_now()
    with engine.connect() as connection:
        candidates = connection.execute(
            sa.select(runs.c.run_id, runs.c.host, runs.c.pid, runs.c.started_at, runs.c.heartbeat_at).where(
                runs.c.status == "running"
            )
        ).all()
    gone = [(row, why) for row in candidates if (why := _why_gone(row, host, now, lease_s))]
    if not gone:
        return 0
    marked = 0
    with engine.begin() as connection:
        for row, error in gone:
            result = connection.execute(
                sa.update(runs)
                # Still running, and no heartbeat since we looked: the run may have moved on.
                .where(runs.c.run_id == row.run_id, runs.c.status == "running")
                .where(_same_heartbeat(row.heartbeat_at))
                .values(status="abandoned", finished_at=now, duration_s=(now - row.started_at).total_seconds())
                .values(error=error)
            )
            marked += result.rowcount
    logger.info("marked %d run(s) abandoned", marked)
    return marked


def _why_gone(row, host: str, now, lease_s: float | None) -> str | None:
    """Why nobody runs this `running` run any more, or None while someone may."""
    if row.host == host and row.pid is not None and not _pid_alive(row.pid):
        return f"process {row.pid} on {host} ended without finishing the run"
    if lease_s is None or row.heartbeat_at is None or (now - row.heartbeat_at).total_seconds() <= lease_s:
        return None
    last = f"{row.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
    return f"process {row.pid} on {row.host} last said it was alive at {last} (lease {lease_s:g} s)"


def _same_heartbeat(seen):
    return runs.c.heartbeat_at.is_(None) if seen is None else runs.c.heartbeat_at == seen


def beat(engine: sa.Engine, run_id: str) -> None:
    """A running run's process says it is alive (Heartbeat calls this)."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(runs).where(runs.c.run_id == run_id, runs.c.status == "running").values(heartbeat_at=utc_now())
        )


class Heartbeat:
    """Beats for a run from a thread of its own every `every_s` seconds, until stopped. A beat
    that fails (the database away for a moment) is tried again at the next one: a lease is
    several beats long."""

    def __init__(self, engine: sa.Engine, run_id: str, every_s: float):
        self._engine, self._run_id, self._every_s = engine, run_id, every_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        self._thread.join(timeout=self._every_s + 5)

    def _beat(self) -> None:
        while not self._stopped.wait(self._every_s):
            try:
                beat(self._engine, self._run_id)
            except Exception as error:  # noqa: BLE001 - logged; the run goes on
                logger.warning("heartbeat of run %s not recorded: %s", self._run_id, error)


def metrics_of(engine: sa.Engine, run_id: str) -> list[Metric]:
    """The metrics of a run in insertion order; a NULL value comes back as NaN."""
    query = sa.select(run_metrics).where(run_metrics.c.run_id == run_id).order_by(run_metrics.c.id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        Metric(
            name=row.name,
            value=math.nan if row.value is None else row.value,
            split=row.split,
            slice=row.slice,
            epoch=row.epoch,
            baseline=row.baseline,
        )
        for row in rows
    ]


def latest_run(engine: sa.Engine, task: str, status: str = "succeeded", version: str | None = None) -> dict | None:
    """The most recently started run of ``task`` with ``status`` (and output ``version``); None if none."""
    conditions = [runs.c.task == task, runs.c.status == status]
    if version is not None:
        conditions.append(runs.c.version == version)
    query = sa.select(runs).where(*conditions).order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(1)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return dict(row._mapping) if row is not None else None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:  # kill(0 or negative) would address process groups: cannot tell, keep it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process stays in the table until its parent reaps it, and kill(pid, 0) succeeds on
    it: Linux's /proc says it is a zombie (state Z, after the name in parentheses)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or gone meanwhile
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _metric_row(run_id: str, metric: Metric) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "split": metric.split,
        "slice": metric.slice,
        "name": metric.name,
        "value": finite_or_none(metric.value),
        "epoch": _optional_int(metric.epoch),
        "baseline": metric.baseline,
    }


def _optional_int(value: int | None) -> int | None:
    return None if value is None else int(value)
