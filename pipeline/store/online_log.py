"""Predictions the server answered (`overnight serve`), into the same `predictions` table as the
nights' rows, marked `origin = 'online'` with the time of their request (migration 0010).

The server journals every answer on disk before it replies (pipeline/serving/journal.py) and
loads the journal here, a segment at a time. A segment loaded twice (the server killed after the
commit, before it removed the file) stores the same rows once: a load replaces the rows that have
its keys (day, example, model, online). So does a second answer for one example on one day and
model: the later one is kept, as a night's reload keeps its last rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from pipeline.store import resolutions
from pipeline.store.row_writing import DELETE_IDS, INSERT_ROWS, nullable, pages
from pipeline.store.tables import ONLINE, predictions
from pipeline.store.transactions import locked_transaction

__all__ = ["ONLINE_COLUMNS", "load_online"]

logger = logging.getLogger(__name__)

ONLINE_COLUMNS = ("batch_date", "example_id", "model_version", "prediction", "score", "probabilities", "requested_at")
_ONLINE_LOCK_KEY = 0x6F76_6E69_6F6E_6C  # "ovnionl": one loader of online rows at a time


def load_online(engine: sa.Engine, rows: pd.DataFrame) -> int:
    """Store answered predictions (ONLINE_COLUMNS; batch_date a date, requested_at an aware
    datetime), replacing rows with the same key, and refresh the quality figures of their nights,
    in one transaction.

    Returns:
        The number of rows stored (a key given twice counts once: its last row).
    """
    frame = rows.drop_duplicates(["batch_date", "example_id", "model_version"], keep="last")
    with locked_transaction(engine, _ONLINE_LOCK_KEY) as connection:
        nights = sorted(set(zip(frame["batch_date"], frame["model_version"])))
        for night, model in nights:
            tonight = frame[(frame["batch_date"] == night) & (frame["model_version"] == model)]
            _delete_online(connection, night, model, tonight["example_id"].tolist())
        values = {column: frame[column].tolist() for column in ONLINE_COLUMNS}
        values["score"] = nullable(frame["score"])  # NaN as NULL
        records = [dict(zip(values, row), origin=ONLINE) for row in zip(*values.values())]
        for page in pages(records, INSERT_ROWS):
            connection.execute(sa.insert(predictions), page)
        resolutions.refresh_nights(connection, nights)
    logger.debug("%d online prediction(s) stored", len(frame))
    return len(frame)


def _delete_online(connection: sa.Connection, night, model: str, ids: Sequence[str]) -> None:
    for page in pages(list(ids), DELETE_IDS):
        connection.execute(
            sa.delete(predictions).where(
                predictions.c.batch_date == night,
                predictions.c.model_version == model,
                predictions.c.origin == ONLINE,
                predictions.c.example_id.in_(page),
            )
        )
