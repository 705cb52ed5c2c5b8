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
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import uuid
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timezone
from itertools import repeat
from typing import Any, Callable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.database import locked_transaction
from pipeline.database.schema import (
    batches,
    drift as drift_table,
    drift_alerts_view,
    feature_stats,
    feedback,
    predictions as predictions_table,
)
from pipeline.faults import pause_point

__all__ = [
    "PREDICTION_COLUMNS",
    "alerts",
    "batch_loaded",
    "load_batch",
    "load_feedback",
    "record_drift",
]

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("example_id", "prediction", "score", "probabilities")
STATS_COLUMNS = ("feature", "statistic", "batch_value", "reference_value")
DRIFT_COLUMNS = ("feature", "method", "score", "threshold", "alert")
FEEDBACK_COLUMNS = ("example_id", "label")

# Rows per COPY statement (PostgreSQL) and per executemany page (SQLite, other drivers): large
# enough that per-statement overhead vanishes, small enough to bound the CSV buffer.
COPY_ROWS = 100_000
INSERT_ROWS = 10_000
# Ids per DELETE ... IN (...): far below SQLite's limit on bound parameters.
DELETE_IDS = 500

_TABLE_COLUMNS = (
    "batch_date", "example_id", "model_version", "prediction", "score", "probabilities",
)
_MAX_ID = predictions_table.c.example_id.type.length
_MAX_VERSION = predictions_table.c.model_version.type.length
_MAX_FEATURE = drift_table.c.feature.type.length
_MAX_STATISTIC = feature_stats.c.statistic.type.length
_MAX_METHOD = drift_table.c.method.type.length
_DEFAULT_NULL_MARKER = "\\N"  # two characters: backslash, N

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
) -> int:
    """Store one nightly batch's predictions and its ``batches`` row, replacing an earlier load.

    Args:
        predictions: one DataFrame or an iterable of DataFrame chunks with the columns
            ``example_id`` (unique in the batch), ``prediction``, ``score`` and, optionally,
            ``probabilities`` (JSON text, or dicts that are serialised; NULL when absent).
            Other columns are ignored.
        rows_in, rows_rejected: the batch's input and rejected row counts, for the marker.
        run_id: the run that loads the batch (LogPredictions), if any.

    Returns:
        The number of prediction rows stored (``rows_scored``); status is ``empty`` for 0.

    Raises:
        ValueError: a required column is missing, an example_id is missing, too long or
            repeated within a chunk. Nothing is stored then.
        sqlalchemy.exc.IntegrityError: an example_id repeated across chunks. Nothing is stored.
    """
    batch_date = _as_date(batch_date)
    _check_text("model_version", model_version, _MAX_VERSION)
    chunks: Iterable[pd.DataFrame] = (
        [predictions] if isinstance(predictions, pd.DataFrame) else predictions
    )
    lock_key = _lock_key("predictions", batch_date.isoformat(), model_version)
    with locked_transaction(engine, lock_key) as connection:
        connection.execute(
            sa.delete(predictions_table).where(
                predictions_table.c.batch_date == batch_date,
                predictions_table.c.model_version == model_version,
            )
        )
        connection.execute(
            sa.delete(batches).where(
                batches.c.batch_date == batch_date, batches.c.model_version == model_version
            )
        )
        write = _row_writer(connection)
        stored = 0
        for chunk in chunks:
            frame = _prediction_frame(chunk)
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
                "status": "loaded" if stored else "empty",
                "loaded_at": _now(),
                "run_id": run_id,
            },
        )
    logger.info("batch %s of model %s: %d predictions stored", batch_date, model_version, stored)
    return stored


def batch_loaded(engine: sa.Engine, batch_date: date, model_version: str) -> bool:
    """Whether the batch of ``batch_date`` scored by ``model_version`` is completely loaded."""
    query = sa.select(batches.c.status).where(
        batches.c.batch_date == _as_date(batch_date), batches.c.model_version == model_version
    )
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def load_feedback(engine: sa.Engine, labels: pd.DataFrame, *, source: str) -> int:
    """Store late labels (columns ``example_id``, ``label``); a new label replaces an old one.

    In one transaction the given ids' rows are deleted and the new ones inserted.
    ``label_value`` is the label as a number when it parses as one (NULL otherwise). An id
    given twice keeps its last label, with a warning. A float label that is a whole number is
    stored as its integer text ("1", not "1.0"), as predictions are.

    Returns:
        The number of labels stored.

    Raises:
        ValueError: a column is missing, or an example_id or label is missing or too long.
    """
    _require_columns(labels, FEEDBACK_COLUMNS, "feedback")
    ids = _text_column(labels["example_id"])
    _check_ids(ids, "feedback")
    label_text = _text_column(labels["label"])
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
    received_at = _now()
    rows = [
        {
            "example_id": example_id,
            "label": label,
            "label_value": _finite_or_none(value),
            "received_at": received_at,
            "source": source,
        }
        for example_id, label, value in zip(
            frame["example_id"].tolist(), frame["label"].tolist(), values.tolist()
        )
    ]
    with locked_transaction(engine, _FEEDBACK_LOCK_KEY) as connection:
        for page in _pages([row["example_id"] for row in rows], DELETE_IDS):
            connection.execute(sa.delete(feedback).where(feedback.c.example_id.in_(page)))
        for page in _pages(rows, INSERT_ROWS):
            connection.execute(sa.insert(feedback), page)
    logger.info("stored %d label(s) from %s", len(rows), source)
    return len(rows)


def record_drift(
    engine: sa.Engine,
    *,
    batch_date: date,
    model_version: str,
    stats: pd.DataFrame,
    drift: pd.DataFrame,
) -> None:
    """Replace the feature statistics and drift rows of one batch and model, in one transaction.

    Args:
        stats: columns ``feature``, ``statistic``, ``batch_value``, ``reference_value``.
        drift: columns ``feature``, ``method`` (psi, ks, js), ``score``, ``threshold``,
            ``alert``.

    Raises:
        ValueError: a column is missing or a text value is longer than its column.
    """
    batch_date = _as_date(batch_date)
    _check_text("model_version", model_version, _MAX_VERSION)
    _require_columns(stats, STATS_COLUMNS, "feature statistics")
    _require_columns(drift, DRIFT_COLUMNS, "drift")
    key = {"batch_date": batch_date, "model_version": model_version}
    stat_rows = [
        {
            **key,
            "feature": _checked(feature, "feature", _MAX_FEATURE),
            "statistic": _checked(statistic, "statistic", _MAX_STATISTIC),
            "batch_value": _finite_or_none(batch_value),
            "reference_value": _finite_or_none(reference_value),
        }
        for feature, statistic, batch_value, reference_value in zip(
            *(stats[column].tolist() for column in STATS_COLUMNS)
        )
    ]
    drift_rows = [
        {
            **key,
            "feature": _checked(feature, "feature", _MAX_FEATURE),
            "method": _checked(method, "method", _MAX_METHOD),
            "score": _finite_or_none(score),
            "threshold": _finite_or_none(threshold),
            "alert": None if _is_missing(alert) else bool(alert),
        }
        for feature, method, score, threshold, alert in zip(
            *(drift[column].tolist() for column in DRIFT_COLUMNS)
        )
    ]
    lock_key = _lock_key("drift", batch_date.isoformat(), model_version)
    with locked_transaction(engine, lock_key) as connection:
        for table in (feature_stats, drift_table):
            connection.execute(
                sa.delete(table).where(
                    table.c.batch_date == batch_date, table.c.model_version == model_version
                )
            )
        for table, rows in ((feature_stats, stat_rows), (drift_table, drift_rows)):
            for page in _pages(rows, INSERT_ROWS):
                connection.execute(sa.insert(table), page)
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
        .where(view.c.batch_date == _as_date(batch_date), view.c.model_version == model_version)
        .order_by(view.c.feature, view.c.method)
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


# --- transactions ------------------------------------------------------------------------------


def _lock_key(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# --- writing prediction rows -------------------------------------------------------------------

_Writer = Callable[[sa.Connection, pd.DataFrame, date, str], int]


def _row_writer(connection: sa.Connection) -> _Writer:
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        return _copy_rows
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return _sqlite_rows
    return _core_rows


def _copy_rows(
    connection: sa.Connection, frame: pd.DataFrame, batch_date: date, model_version: str
) -> int:
    """COPY the rows in CSV through psycopg2, inside the connection's open transaction."""
    dbapi_connection = connection.connection.dbapi_connection
    stored = 0
    with dbapi_connection.cursor() as cursor:
        for start in range(0, len(frame), COPY_ROWS):
            page = frame.iloc[start : start + COPY_ROWS]
            marker = _null_marker(page)
            buffer = io.StringIO()
            page.assign(batch_date=batch_date.isoformat(), model_version=model_version)[
                list(_TABLE_COLUMNS)
            ].to_csv(
                buffer,
                header=False,
                index=False,
                na_rep=marker,
                lineterminator="\n",
                quoting=csv.QUOTE_MINIMAL,
            )
            buffer.seek(0)
            # The marker is our own constant or a uuid: safe to spell into the statement.
            null = "E'\\\\N'" if marker == _DEFAULT_NULL_MARKER else f"'{marker}'"
            statement = (
                f"COPY {predictions_table.name} ({', '.join(_TABLE_COLUMNS)}) "
                f"FROM STDIN WITH (FORMAT csv, NULL {null})"
            )
            try:
                cursor.copy_expert(statement, buffer, size=1 << 20)
            except connection.dialect.loaded_dbapi.Error as exc:
                raise _wrapped(connection, statement, exc) from exc
            stored += len(page)
    return stored


def _null_marker(page: pd.DataFrame) -> str:
    """A NULL marker for COPY that equals no text value in ``page``.

    An unquoted empty field would be the obvious NULL, but to_csv writes an empty string the
    same way, and the two must stay distinct.
    """
    marker = _DEFAULT_NULL_MARKER
    text = [page[column] for column in ("example_id", "prediction", "probabilities")]
    while any(column.eq(marker).any() for column in text):
        marker = f"null-{uuid.uuid4().hex}"
    return marker


def _sqlite_rows(
    connection: sa.Connection, frame: pd.DataFrame, batch_date: date, model_version: str
) -> int:
    """executemany on the sqlite3 cursor, in pages, inside the connection's open transaction."""
    placeholders = ", ".join("?" for _ in _TABLE_COLUMNS)
    statement = (
        f"INSERT INTO {predictions_table.name} ({', '.join(_TABLE_COLUMNS)}) "
        f"VALUES ({placeholders})"
    )
    cursor = connection.connection.dbapi_connection.cursor()
    stored = 0
    try:
        for start in range(0, len(frame), INSERT_ROWS):
            page = frame.iloc[start : start + INSERT_ROWS]
            rows = _row_tuples(page, batch_date.isoformat(), model_version)
            try:
                cursor.executemany(statement, rows)
            except connection.dialect.loaded_dbapi.Error as exc:
                raise _wrapped(connection, statement, exc) from exc
            stored += len(rows)
    finally:
        cursor.close()
    return stored


def _core_rows(
    connection: sa.Connection, frame: pd.DataFrame, batch_date: date, model_version: str
) -> int:
    """Any other driver: SQLAlchemy Core executemany, in pages."""
    stored = 0
    for start in range(0, len(frame), INSERT_ROWS):
        page = frame.iloc[start : start + INSERT_ROWS]
        tuples = _row_tuples(page, batch_date, model_version)
        rows = [dict(zip(_TABLE_COLUMNS, row)) for row in tuples]
        connection.execute(sa.insert(predictions_table), rows)
        stored += len(rows)
    return stored


def _row_tuples(page: pd.DataFrame, batch_date: Any, model_version: str) -> list[tuple]:
    return list(
        zip(
            repeat(batch_date),
            page["example_id"].tolist(),
            repeat(model_version),
            page["prediction"].tolist(),
            _nullable(page["score"]),
            page["probabilities"].tolist(),
        )
    )


def _wrapped(connection: sa.Connection, statement: str, exc: Exception) -> BaseException:
    """A raw DBAPI error as SQLAlchemy's matching exception (IntegrityError, DataError, ...)."""
    dialect = connection.dialect
    return sa.exc.DBAPIError.instance(
        statement, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )


# --- validating and normalising input ------------------------------------------------------------


def _prediction_frame(chunk: pd.DataFrame) -> pd.DataFrame:
    """The chunk's prediction columns, checked: text as str/None, score as float64 (NaN=NULL)."""
    if not isinstance(chunk, pd.DataFrame):
        raise TypeError(f"predictions must be DataFrames, not {type(chunk).__name__}")
    _require_columns(chunk, PREDICTION_COLUMNS[:3], "predictions")
    ids = _text_column(chunk["example_id"])
    _check_ids(ids, "predictions")
    repeated = ids.duplicated()
    if repeated.any():
        raise ValueError(
            f"example_id {ids[repeated].iloc[0]!r} appears more than once in the batch"
        )
    try:
        score = pd.to_numeric(chunk["score"], errors="raise").astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"predictions: score must be numeric ({exc})") from None
    score = score.where(np.isfinite(score))
    if "probabilities" in chunk.columns:
        probabilities = _json_text_column(chunk["probabilities"])
    else:
        probabilities = pd.Series([None] * len(chunk), index=chunk.index, dtype=object)
    return pd.DataFrame(
        {
            "example_id": ids,
            "prediction": _text_column(chunk["prediction"]),
            "score": score,
            "probabilities": probabilities,
        }
    ).reset_index(drop=True)


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}")


def _check_ids(ids: pd.Series, what: str) -> None:
    missing = ids.isna()
    if missing.any():
        raise ValueError(f"{what}: {int(missing.sum())} row(s) have no example_id")
    lengths = ids.str.len()
    if len(ids) and (lengths.max() > _MAX_ID or lengths.min() == 0):
        bad = ids[(lengths > _MAX_ID) | (lengths == 0)].iloc[0]
        raise ValueError(f"{what}: example_id {bad[:80]!r} must have 1 to {_MAX_ID} characters")


def _check_text(name: str, value: str, limit: int) -> None:
    # Checked here: PostgreSQL would reject an over-long value while SQLite would store it.
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(f"{name} {str(value)[:80]!r} must have 1 to {limit} characters")


def _checked(value: Any, name: str, limit: int) -> str:
    text = _text(value)
    _check_text(name, text, limit)
    return text


def _text_column(series: pd.Series) -> pd.Series:
    """``series`` as Python str objects (object dtype), missing values as None."""
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind in ("string", "empty"):
        values = series.astype(object)
    elif pd.api.types.is_integer_dtype(series.dtype) and not series.hasnans:
        values = series.astype(str).astype(object)
    else:
        values = series.astype(object).map(_text, na_action="ignore")
    return values.where(series.notna(), None)


def _json_text_column(series: pd.Series) -> pd.Series:
    """Probabilities as JSON text: strings kept verbatim, dicts and lists serialised."""
    if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        values = series.astype(object)
    else:
        values = series.astype(object).map(_json_text, na_action="ignore")
    return values.where(series.notna(), None)


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps({str(key): _json_value(item) for key, item in value.items()})
    if isinstance(value, (list, tuple, np.ndarray)):
        return json.dumps([_json_value(item) for item in value])
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text(value: Any) -> str:
    """One value as text: strings verbatim, whole floats without ".0" (1.0 -> "1")."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
        return repr(number)
    return str(value)


def _nullable(series: pd.Series) -> list:
    return series.astype(object).where(series.notna(), None).tolist()


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _finite_or_none(value: Any) -> float | None:
    if _is_missing(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _as_date(value: date) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise TypeError(f"batch_date must be a date, not {type(value).__name__}")


def _pages(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now() -> datetime:
    return datetime.now(timezone.utc)
