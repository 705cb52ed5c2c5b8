"""Predictions the server answered (`overnight serve`), into the same `predictions` table as the
nights' rows, marked `origin = 'online'` with the time of their request (migration 0010).

The server journals every answer on disk before it replies (pipeline/serving/journal.py) and
loads the journal here, a segment at a time. A segment loaded twice (the server killed after the
commit, before it removed the file) stores the same rows once: a load replaces the rows that have
its keys (day, example, model, online). So does a second answer for one example on one day and
model: the later one is kept, as a night's reload keeps its last rows. Each load changes its
nights' quality figures by what its rows add (pipeline/store/night_tally.py): a load costs its
rows, not the day's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from pipeline.store import night_tally, resolutions
from pipeline.store.row_writing import DELETE_IDS, INSERT_ROWS, can_copy, copy_frame, nullable, pages
from pipeline.store.tables import ONLINE, predictions
from pipeline.store.transactions import locked_transaction

__all__ = ["ONLINE_COLUMNS", "count_online", "load_online", "online_rows"]

logger = logging.getLogger(__name__)

ONLINE_COLUMNS = (
    "batch_date",
    "example_id",
    "model_version",
    "prediction",
    "score",
    "probabilities",
    "requested_at",
    "inputs",
)
_ONLINE_LOCK_KEY = 0x6F76_6E69_6F6E_6C  # "ovnionl": one loader of online rows at a time


def load_online(engine: sa.Engine, rows: pd.DataFrame) -> int:
    """Store answered predictions (ONLINE_COLUMNS; batch_date a date, requested_at an aware
    datetime, inputs JSON text or None), replacing rows with the same key, and refresh the quality
    figures of their nights, in one transaction.

    Returns:
        The number of rows stored (a key given twice counts once: its last row).
    """
    frame = rows.drop_duplicates(["batch_date", "example_id", "model_version"], keep="last")
    with locked_transaction(engine, _ONLINE_LOCK_KEY) as connection:
        resolutions.serialize(connection)
        ids = {key: part["example_id"].tolist() for key, part in frame.groupby(["batch_date", "model_version"])}
        before = {}
        for (night, model), replaced in ids.items():
            before[night, model] = night_tally.tally(connection, night, model, ONLINE, replaced)
            _delete_online(connection, night, model, replaced)
        _insert(connection, frame)
        # The figures change by what these rows add: a load costs its rows, whatever the day holds.
        for (night, model), stored in ids.items():
            after = night_tally.tally(connection, night, model, ONLINE, stored)
            night_tally.add(connection, night, model, ONLINE, after - before[night, model])
    logger.debug("%d online prediction(s) stored", len(frame))
    return len(frame)


def _insert(connection: sa.Connection, frame: pd.DataFrame) -> None:
    """COPY on PostgreSQL, as a night's rows go in; executemany in pages elsewhere."""
    if can_copy(connection):
        copy_frame(connection, frame.assign(origin=ONLINE), (*ONLINE_COLUMNS, "origin"))
        return
    values = {column: frame[column].tolist() for column in ONLINE_COLUMNS}
    values["score"] = nullable(frame["score"])  # NaN as NULL
    records = [dict(zip(values, row), origin=ONLINE) for row in zip(*values.values())]
    for page in pages(records, INSERT_ROWS):
        connection.execute(sa.insert(predictions), page)


def _answered_online(night, model: str):
    """The WHERE clause of one day's online answers by one model."""
    return sa.and_(
        predictions.c.batch_date == night, predictions.c.model_version == model, predictions.c.origin == ONLINE
    )


def _delete_online(connection: sa.Connection, night, model: str, ids: Sequence[str]) -> None:
    for page in pages(list(ids), DELETE_IDS):
        connection.execute(
            sa.delete(predictions).where(_answered_online(night, model), predictions.c.example_id.in_(page))
        )


def online_rows(connection: sa.Connection, batch_date, model_version: str) -> pd.DataFrame:
    """The online answers of a day by one model that kept their inputs: example_id, prediction,
    score, and the columns the requests sent (JSON values, a column a request did not send as
    None), for the night's drift check."""
    query = (
        sa.select(predictions.c.example_id, predictions.c.prediction, predictions.c.score, predictions.c.inputs)
        .where(_answered_online(batch_date, model_version), predictions.c.inputs.is_not(None))
        .order_by(predictions.c.requested_at, predictions.c.example_id)
    )
    found = connection.execute(query).all()
    answers = pd.DataFrame(
        {
            "example_id": [row.example_id for row in found],
            "prediction": [row.prediction for row in found],
            "score": pd.Series([row.score for row in found], dtype=float),
        }
    )
    sent = pd.DataFrame.from_records([json.loads(row.inputs) for row in found], index=answers.index)
    return pd.concat([sent.drop(columns=[c for c in answers.columns if c in sent.columns]), answers], axis=1)


def count_online(connection: sa.Connection, batch_date, model_version: str) -> int:
    """How many online answers of a day by one model kept their inputs (what online_rows reads)."""
    query = sa.select(sa.func.count()).where(
        _answered_online(batch_date, model_version), predictions.c.inputs.is_not(None)
    )
    return int(connection.execute(query).scalar_one())
