"""The database the tasks record into: one engine per process, stale runs settled once.

A run whose process was killed stays `running` in the ledger until a later process on the same
host notices that its pid is gone and marks it `abandoned`. That happens when a process first
uses the database, and at the latest at its first completeness check (`settle_stale_runs`),
so even a command that finds everything complete settles what an earlier kill left behind.
"""

from __future__ import annotations

import functools
import logging

from pipeline.errors import DataError
from pipeline.store import database, ledger, registry
from pipeline.store.database import DatabaseUnavailable
from tasks.config import database_url

logger = logging.getLogger(__name__)


@functools.cache
def engine_for(url: str):
    engine = database.connect(url)
    abandoned = ledger.mark_abandoned(engine)
    if abandoned:
        logger.warning("marked %d run(s) abandoned: their process died while running", abandoned)
    return engine


def engine():
    return engine_for(database_url())


_settle_tried: set[str] = set()


def settle_stale_runs() -> None:
    """Open the database once per process, which marks dead processes' runs abandoned.

    An unreachable database is not an error here (a complete task needs none): the task that
    needs it says so when it runs, and completeness checks do not wait on it again.
    """
    url = database_url()
    if url in _settle_tried:
        return
    _settle_tried.add(url)
    try:
        engine_for(url)
    except DatabaseUnavailable as error:
        logger.warning("stale runs not checked: %s", error)


def production_version() -> str:
    """The production model's version; asking needs the database, never TensorFlow."""
    row = registry.production(engine())
    if row is None:
        raise DataError("no production model yet: run `luigi --module tasks RegisterModel` first")
    return row["version"]


def model_row(version: str) -> dict:
    for row in registry.versions(engine()):
        if row["version"] == version:
            return row
    raise DataError(f"model version {version!r} is not in the registry; `overnight models` lists them")
