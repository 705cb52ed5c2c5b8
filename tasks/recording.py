"""The database the tasks record into: one engine per process, stale runs settled once."""
from __future__ import annotations

import functools
import logging

from pipeline import database, ledger, registry
from pipeline.errors import DataError
from tasks.config import database_url

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def engine_for(url: str):
    engine = database.connect(url)
    abandoned = ledger.mark_abandoned(engine)
    if abandoned:
        logger.warning("marked %d run(s) abandoned: their process died while running", abandoned)
    return engine


def engine():
    return engine_for(database_url())


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
