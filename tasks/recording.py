"""The database the tasks record into: one engine per process, stale runs settled once."""
from __future__ import annotations

import functools
import logging

from pipeline import database, ledger
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
