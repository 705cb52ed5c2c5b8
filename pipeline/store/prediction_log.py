"""The prediction log: nightly batches of predictions, late labels and drift figures in SQL.

:func:`load_batch` is idempotent: in one transaction it deletes what an earlier load of the
same (batch_date, model_version) wrote, inserts every prediction row, and writes the ``batches``
row that marks the batch complete (:func:`batch_loaded`). A rerun replaces, a failure anywhere
leaves the previous load as it was, and two loads of the same batch at once serialise.

Bulk rows go through PostgreSQL's COPY (psycopg2 ``copy_expert``, CSV built by
``DataFrame.to_csv``) on the SQLAlchemy connection's own DBAPI connection, so the DELETE, the
COPY and the marker share one transaction; on SQLite, ``executemany`` on the sqlite3 cursor in
pages of 10,000. Predictions may arrive as an iterator of DataFrame chunks, so a large batch is
never in memory whole.

Text is stored verbatim (commas, quotes, newlines, backslashes, unicode, SQL-looking strings):
COPY reads CSV fields literally, and its NULL marker is chosen per chunk so that it equals no
value in it, which keeps an empty string distinct from NULL. NaN and infinite floats are
stored as NULL on both backends.

The row writers are in :mod:`pipeline.store.row_writing`; checking and converting values is
:mod:`pipeline.store.values`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipeline.common.clock import utc_now
from pipeline.common.columns import DRIFT_COLUMNS, STATS_COLUMNS
from pipeline.common.faults import pause_point
from pipeline.common.jsonvalues import finite_or_none, is_missing
from pipeline.store import markers, resolutions
from pipeline.store.markers import Marker
from pipeline.store.row_writing import INSERT_ROWS, pages, row_writer
from pipeline.store.tables import BATCH, BATCH_STATUSES, batches, feature_stats
from pipeline.store.tables import drift as drift_table
from pipeline.store.tables import predictions as predictions_table
from pipeline.store.transactions import lock_key, locked_transaction
from pipeline.store.values import (
    MAX_FEATURE,
    MAX_METHOD,
    MAX_STATISTIC,
    MAX_VERSION,
    as_date,
    check_text,
    checked,
    prediction_frame,
    require_frame_columns,
)
from pipeline.store.views import drift_alerts_view

__all__ = ["alerts", "batch_loaded", "load_batch", "record_drift"]

logger = logging.getLogger(__name__)


def load_batch(
    engine: sa.Engine,
    *,
    batch_date: date,
    model_version: str,
    predictions: pd.DataFrame | Iterable[pd.DataFrame],
    rows_in: int,
    rows_rejected: int,
    run_id: str | None = None,
    status: str | None = None,
) -> int:
    """Store one nightly batch's predictions and its ``batches`` row, replacing an earlier load.

    Args:
        predictions: one DataFrame or an iterable of DataFrame chunks with the columns
            ``example_id`` (unique in the batch), ``prediction``, ``score`` and, optionally,
            ``probabilities`` (JSON text, or dicts that are serialised; NULL when absent).
            Other columns are ignored.
        rows_in, rows_rejected: the batch's input and rejected row counts, for the marker.
        run_id: the run that loads the batch (LogPredictions), if any.
        status: the night's status when it is not just its rows' (partial: files were
            quarantined; missing: its folder did not exist); by default loaded, or empty for 0.

    Returns:
        The number of prediction rows stored (``rows_scored``); status is ``empty`` for 0.

    Raises:
        ValueError: a required column is missing, an example_id is missing, too long or
            repeated within a chunk. Nothing is stored then.
        sqlalchemy.exc.IntegrityError: an example_id repeated across chunks. Nothing is stored.
    """
    batch_date = as_date(batch_date)
    check_text("model_version", model_version, MAX_VERSION)
    chunks: Iterable[pd.DataFrame] = [predictions] if isinstance(predictions, pd.DataFrame) else predictions
    key = lock_key("predictions", batch_date.isoformat(), model_version)
    with locked_transaction(engine, key) as connection:
        connection.execute(
            sa.delete(predictions_table).where(
                predictions_table.c.batch_date == batch_date,
                predictions_table.c.model_version == model_version,
                predictions_table.c.origin == BATCH,  # the server's answers of that day stay
            )
        )
        connection.execute(
            sa.delete(batches).where(batches.c.batch_date == batch_date, batches.c.model_version == model_version)
        )
        write = row_writer(connection)
        stored = 0
        for chunk in chunks:
            frame = prediction_frame(chunk)
            if len(frame):
                stored += write(connection, frame, batch_date, model_version)
                pause_point("prediction-log:mid-load")  # rows in, marker not: where a crash test kills
        # The night's quality rows follow its predictions in the same transaction (migration 0007).
        resolutions.refresh_nights(connection, [(batch_date, model_version)])
        connection.execute(
            sa.insert(batches),
            {
                "batch_date": batch_date,
                "model_version": model_version,
                "rows_in": int(rows_in),
                "rows_rejected": int(rows_rejected),
                "rows_scored": stored,
                "status": _night_status(status, stored),
                "loaded_at": utc_now(),
                "run_id": run_id,
            },
        )
    logger.info("batch %s of model %s: %d predictions stored", batch_date, model_version, stored)
    return stored


def _night_status(status: str | None, stored: int) -> str:
    if status in (None, "loaded", "empty"):
        return "loaded" if stored else "empty"
    if status not in BATCH_STATUSES:
        raise ValueError(f"night status {status!r} is not one of {', '.join(BATCH_STATUSES)}")
    return status


def batch_loaded(engine: sa.Engine, batch_date: date, model_version: str) -> bool:
    """Whether the batch of ``batch_date`` scored by ``model_version`` is completely loaded."""
    query = sa.select(batches.c.status).where(
        batches.c.batch_date == as_date(batch_date), batches.c.model_version == model_version
    )
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def record_drift(
    engine: sa.Engine,
    *,
    batch_date: date,
    model_version: str,
    stats: pd.DataFrame,
    drift: pd.DataFrame,
    marker: Marker | None = None,
) -> None:
    """Replace the feature statistics and drift rows of one batch and model, in one transaction.

    Args:
        stats: columns ``feature``, ``statistic``, ``batch_value``, ``reference_value``.
        drift: columns ``feature``, ``method`` (psi, ks, js), ``score``, ``threshold``,
            ``alert``.
        marker: written in the same transaction: the night's drift rows are then complete here.

    Raises:
        ValueError: a column is missing or a text value is longer than its column.
    """
    batch_date = as_date(batch_date)
    check_text("model_version", model_version, MAX_VERSION)
    require_frame_columns(stats, STATS_COLUMNS, "feature statistics")
    require_frame_columns(drift, DRIFT_COLUMNS, "drift")
    key = {"batch_date": batch_date, "model_version": model_version}
    stat_rows = [
        {
            **key,
            "feature": checked(feature, "feature", MAX_FEATURE),
            "statistic": checked(statistic, "statistic", MAX_STATISTIC),
            "batch_value": finite_or_none(batch_value),
            "reference_value": finite_or_none(reference_value),
        }
        for feature, statistic, batch_value, reference_value in zip(
            *(stats[column].tolist() for column in STATS_COLUMNS)
        )
    ]
    drift_rows = [
        {
            **key,
            "feature": checked(feature, "feature", MAX_FEATURE),
            "method": checked(method, "method", MAX_METHOD),
            "score": finite_or_none(score),
            "threshold": finite_or_none(threshold),
            "alert": None if is_missing(alert) else bool(alert),
        }
        for feature, method, score, threshold, alert in zip(*(drift[column].tolist() for column in DRIFT_COLUMNS))
    ]
    key = lock_key("drift", batch_date.isoformat(), model_version)
    with locked_transaction(engine, key) as connection:
        for table in (feature_stats, drift_table):
            connection.execute(
                sa.delete(table).where(table.c.batch_date == batch_date, table.c.model_version == model_version)
            )
        for table, rows in ((feature_stats, stat_rows), (drift_table, drift_rows)):
            for page in pages(rows, INSERT_ROWS):
                connection.execute(sa.insert(table), page)
        if marker is not None:
            markers.write(connection, marker)
    logger.info(
        "batch %s of model %s: %d feature statistic(s), %d drift row(s), %d alert(s)",
        batch_date,
        model_version,
        len(stat_rows),
        len(drift_rows),
        sum(1 for row in drift_rows if row["alert"]),
    )


def alerts(engine: sa.Engine, batch_date: date, model_version: str) -> list[dict]:
    """The drift alerts of one batch and model (from the ``drift_alerts`` view), as dicts."""
    view = drift_alerts_view
    query = (
        sa.select(view)
        .where(view.c.batch_date == as_date(batch_date), view.c.model_version == model_version)
        .order_by(view.c.feature, view.c.method)
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
