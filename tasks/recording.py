"""The database the tasks record into, for running tasks and for checking them.

A task that runs opens the database with `engine()`: the first time in a process that migrates
the schema to head. A completeness check only reads (`reader()`), and a database not created or
not migrated yet simply holds nothing: checking what is done never changes the database. Runs a
killed process left `running` are marked `abandoned` when a command starts (settle_stale_runs,
from tasks/base/startup.py), so even a command that finds everything complete settles them.
"""

from __future__ import annotations

import functools
import logging

from pipeline.errors import DataError
from pipeline.store import database, ledger, markers, registry
from pipeline.store.database import DatabaseUnavailable
from tasks.config import database_url, overnight

logger = logging.getLogger(__name__)


@functools.cache
def engine_for(url: str):
    engine = database.connect(url)
    settle_dead_runs(engine)
    return engine


_settled: set[str] = set()


def settle_stale_runs() -> None:
    """Bring an existing database's schema up to this code and mark this host's runs whose process
    died `abandoned`, once per process and database.

    A database without the schema is not created here (a command that only checks creates
    nothing). An unreachable database is not an error here (a complete task needs none): the
    task that needs it says so when it runs.
    """
    url = database_url()
    if url in _settled:
        return
    _settled.add(url)
    try:
        database.upgrade_existing(url)
        engine = database.connect_for_reading(url)
    except DatabaseUnavailable as error:
        logger.warning("stale runs not checked: %s", error)
        return
    if engine is not None:
        settle_dead_runs(engine)


def settle_dead_runs(engine) -> None:
    """Mark `abandoned` the runs whose process died: this host's by their pid, any host's by a
    heartbeat older than `[overnight] run_lease_s`."""
    lease_s = overnight().run_lease_s
    abandoned = ledger.mark_abandoned(engine, lease_s=lease_s if lease_s > 0 else None)  # a run says why not
    if abandoned:
        logger.warning("marked %d run(s) abandoned: their process died while running", abandoned)


def engine():
    """The database, migrated, with stale runs settled: for a task that runs."""
    return engine_for(database_url())


def reader():
    """The database as it is, for a completeness check; None before it has the newest schema."""
    return database.connect_for_reading(database_url())


def is_marked(task: str, version: str) -> bool:
    """Whether the configured database holds the marker of this output's rows."""
    connection = reader()
    return connection is not None and markers.is_marked(connection, task, version)


def production_version() -> str:
    """The production model's version; asking needs the database, never TensorFlow."""
    connection = reader()
    row = registry.production(connection) if connection is not None else None
    if row is None:
        raise DataError("no production model yet: run `luigi --module tasks RegisterModel` first")
    return row["version"]


def model_row_sha256(version: str) -> str | None:
    """The sha256 the registry holds for a model now (not cached: a rebuild changes it)."""
    connection = reader()
    row = registry.find(connection, version) if connection is not None else None
    return row and row["sha256"]


def model_row_files(version: str) -> dict[str, str]:
    """{file name: sha256} the registry holds for a model's files now (not cached: a rebuild
    changes them); only model.keras's for a model registered before the files were hashed."""
    from pipeline.artifacts.model import MODEL

    connection = reader()
    row = registry.find(connection, version) if connection is not None else None
    if row is None:
        return {}
    return dict(row.get("files") or ({MODEL: row["sha256"]} if row["sha256"] else {}))


def model_row(version: str) -> dict:
    """A registered model's row. Its path, task, data and evaluation never change once
    registered, so each is read once per process (a night asks several times)."""
    return _model_row(database_url(), version)


@functools.cache
def _model_row(url: str, version: str) -> dict:
    connection = database.connect_for_reading(url)
    row = registry.find(connection, version) if connection is not None else None
    if row is None:
        raise DataError(f"model version {version!r} is not in the registry; `overnight models` lists them")
    return row
