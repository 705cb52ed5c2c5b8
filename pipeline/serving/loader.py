"""Moves the journal into SQL, a segment at a time, about once a second, in a process of its own
(pipeline/serving/loader_process.py).

A segment is removed only after its rows are committed. When the database is down, the segment
is given back and the loader tries again on the next round: requests are still answered, the
journal grows (`/health` and `/metrics` show the backlog), and it loads when the database is
back. At start the loader loads what an earlier server left (pipeline/serving/journal.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from pipeline.serving.journal import Journal, read
from pipeline.store.database import DatabaseUnavailable
from pipeline.store.online_log import ONLINE_COLUMNS

__all__ = ["JournalLoader", "records_frame"]

logger = logging.getLogger(__name__)

# What a database that went away raises on the way in: a load waits for it, nothing is dropped.
UNREACHABLE = (DatabaseUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError)


class JournalLoader:
    """Loads ready journal segments with `store` (rows -> count stored), when asked."""

    def __init__(self, journal: Journal, store: Callable[[pd.DataFrame], int]):
        self.journal = journal
        self._store = store
        self.database_error: str | None = None  # the last load's failure, None once one succeeds

    def load_ready(self, *, deadline: float | None = None) -> int:
        """Load every ready segment this process can claim; stop at the first that fails."""
        started, loaded = datetime.now(), 0
        for segment in self.journal.ready():
            if deadline is not None and (datetime.now() - started).total_seconds() > deadline:
                break
            claimed = self.journal.claim(segment)
            if claimed is None:
                continue  # another worker took it
            try:
                stored = self._store(records_frame(read(claimed)))
            except UNREACHABLE as error:
                self.journal.release(claimed)
                self._report_outage(error)
                break
            except Exception:
                self.journal.release(claimed)
                logger.exception("journal: %s could not be loaded; it stays and is tried again", claimed.name)
                break
            self.journal.done(claimed)
            if self.database_error is not None:
                logger.info("journal: the database is back; loading the answers kept meanwhile")
            self.database_error = None
            loaded += stored
        return loaded

    def _report_outage(self, error: Exception) -> None:
        line = str(error).splitlines()[0]
        if self.database_error is None:
            logger.warning("journal: the database cannot be reached (%s); answers are kept on disk until it can", line)
        self.database_error = line


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Journal records as the rows pipeline/store/online_log.py stores (ONLINE_COLUMNS)."""
    frame = pd.DataFrame.from_records(records, columns=list(ONLINE_COLUMNS))
    frame["batch_date"] = [date.fromisoformat(day) for day in frame["batch_date"]]
    frame["requested_at"] = [datetime.fromisoformat(at) for at in frame["requested_at"]]
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce")
    # The row as sent, as JSON text; None for an image-only row or a segment from before 0011.
    frame["inputs"] = [
        json.dumps(sent, separators=(",", ":")) if isinstance(sent, dict) else None for sent in frame["inputs"]
    ]
    return frame
