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

import hashlib
import logging
from collections.abc import Iterable
from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipeline.common.clock import utc_now
from pipeline.common.columns import DRIFT_COLUMNS, FEEDBACK_COLUMNS, STATS_COLUMNS
from pipeline.common.faults import pause_point
from pipeline.common.jsonvalues import finite_or_none, is_missing
from pipeline.store import markers
from pipeline.store.markers import Marker
from pipeline.store.row_writing import DELETE_IDS, INSERT_ROWS, pages, row_writer
from pipeline.store.tables import BATCH_STATUSES, batches, drift_alerts_view, feature_stats, feedback
from pipeline.store.tables import drift as drift_table
from pipeline.store.tables import predictions as predictions_table
from pipeline.store.transactions import locked_transaction
from pipeline.store.values import (
    MAX_FEATURE,
    MAX_METHOD,
    MAX_STATISTIC,
    MAX_VERSION,
    as_date,
    check_ids,
    check_text,
    checked,
    prediction_frame,
    require_frame_columns,
    text_column,
)

__all__ = ["alerts", "batch_loaded", "load_batch", "load_feedback", "record_drift"]

logger = logging.getLogger(__name__)


# Namespaces of pg_advisory_xact_lock keys, so loads of different things never wait on each other.
_FEEDBACK_LOCK_KEY = 0x6F76_6E69_6662_6B  # "ovnifbk"


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
    lock_key = _lock_key("predictions", batch_date.isoformat(), model_version)
    with locked_transaction(engine, lock_key) as connection:
        connection.execute(
            sa.delete(predictions_table).where(
                predictions_table.c.batch_date == batch_date, predictions_table.c.model_version == model_version
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


def load_feedback(engine: sa.Engine, labels: pd.DataFrame, *, source: str, marker: Marker | None = None) -> int:
    """Store late labels (columns ``example_id``, ``label``); a new label replaces an old one.

    In one transaction the given ids' rows are deleted and the new ones inserted.
    ``label_value`` is the label as a number when it parses as one (NULL otherwise). An id
    given twice keeps its last label, with a warning. A float label that is a whole number is
    stored as its integer text ("1", not "1.0"), as predictions are.

    A `marker` (pipeline/store/markers.py) is written in the same transaction: the labels of that
    output are then complete in this database.

    Returns:
        The number of labels stored.

    Raises:
        ValueError: a column is missing, or an example_id or label is missing or too long.
    """
    require_frame_columns(labels, FEEDBACK_COLUMNS, "feedback")
    ids = text_column(labels["example_id"])
    check_ids(ids, "feedback")
    label_text = text_column(labels["label"])
    missing = label_text.isna()
    if missing.any():
        first = ids[missing].iloc[0]
        raise ValueError(f"{int(missing.sum())} feedback row(s) have no label (first: {first!r})")
    frame = pd.DataFrame({"example_id": ids, "label": label_text})
    repeated = frame["example_id"].duplicated(keep="last")
    if repeated.any():
        logger.warning(
            "feedback from %s: %d example id(s) given more than once; keeping the last label",
            source,
            int(repeated.sum()),
        )
        frame = frame[~repeated]
    values = pd.to_numeric(frame["label"], errors="coerce").astype("float64")
    received_at = utc_now()
    rows = [
        {
            "example_id": example_id,
            "label": label,
            "label_value": finite_or_none(value),
            "received_at": received_at,
            "source": source,
        }
        for example_id, label, value in zip(frame["example_id"].tolist(), frame["label"].tolist(), values.tolist())
    ]
    with locked_transaction(engine, _FEEDBACK_LOCK_KEY) as connection:
        for page in pages([row["example_id"] for row in rows], DELETE_IDS):
            connection.execute(sa.delete(feedback).where(feedback.c.example_id.in_(page)))
        for page in pages(rows, INSERT_ROWS):
            connection.execute(sa.insert(feedback), page)
        if marker is not None:
            markers.write(connection, marker)
    logger.info("stored %d label(s) from %s", len(rows), source)
    return len(rows)


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
    lock_key = _lock_key("drift", batch_date.isoformat(), model_version)
    with locked_transaction(engine, lock_key) as connection:
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


# --- transactions ------------------------------------------------------------------------------


def _lock_key(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
