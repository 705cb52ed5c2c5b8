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


def mark_abandoned(engine: sa.Engine) -> int:
    """Mark this host's ``running`` runs whose process is gone as ``abandoned``.

    Only runs started on this host are judged, since a pid means nothing elsewhere.

    Returns:
        How many runs were marked.
    """
    host = socket.gethostname()
    with engine.connect() as connection:
        candidates = connection.execute(
            sa.select(runs.c.run_id, runs.c.pid, runs.c.started_at).where(
                runs.c.status == "running", runs.c.host == host
            )
        ).all()
    gone = [row for row in candidates if row.pid is not None and not _pid_alive(row.pid)]
    if not gone:
        return 0
    now = utc_now()
    marked = 0
    with engine.begin() as connection:
        for row in gone:
            result = connection.execute(
                sa.update(runs)
                # Still running: the run may have finished since we looked.
                .where(runs.c.run_id == row.run_id, runs.c.status == "running")
                .values(
                    status="abandoned",
                    finished_at=now,
                    duration_s=(now - row.started_at).total_seconds(),
                    error=f"process {row.pid} on {host} ended without finishing the run",
                )
            )
            marked += result.rowcount
    logger.info("marked %d run(s) abandoned on %s", marked, host)
    return marked


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
