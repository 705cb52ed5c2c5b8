"""Writing prediction rows fast, inside a transaction the caller holds open.

There are three paths because the fast way to load many rows differs per driver
(``benchmarks/bench_prediction_log.py``, figures in docs/performance.md, 1,000,000 rows):

- PostgreSQL (psycopg2): COPY (``copy_expert``, CSV built by ``DataFrame.to_csv``) on the
  SQLAlchemy connection's own DBAPI connection, so the caller's DELETE, the COPY and its marker
  share one transaction. The whole load runs at 0.95 of a bare ``copy_expert`` of the same rows.
- SQLite (pysqlite): ``executemany`` on the sqlite3 cursor in pages of 10,000; the whole
  load runs at 1.37 of a bare sqlite3 ``executemany``.
- Any other driver: SQLAlchemy Core executemany, in pages. Portable; not benchmarked.

All three store the same (tests/db/test_db_prediction_log.py). Text is stored verbatim: COPY
reads CSV fields literally, and its NULL marker is chosen per chunk so that it equals no value
in it, which keeps an empty string distinct from NULL.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from itertools import repeat
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipeline.store.tables import predictions as predictions_table

# Rows per COPY statement (PostgreSQL) and per executemany page (SQLite, other drivers): large
# enough that per-statement overhead vanishes, small enough to bound the CSV buffer.
COPY_ROWS = 100_000
INSERT_ROWS = 10_000
# Ids per DELETE ... IN (...): far below SQLite's limit on bound parameters.
DELETE_IDS = 500

_TABLE_COLUMNS = ("batch_date", "example_id", "model_version", "prediction", "score", "probabilities")
_DEFAULT_NULL_MARKER = "\\N"  # two characters: backslash, N

_Writer = Callable[[sa.Connection, pd.DataFrame, date, str], int]


def can_copy(connection: sa.Connection) -> bool:
    """Whether rows go in through COPY here (PostgreSQL through psycopg2)."""
    return connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg2"


def row_writer(connection: sa.Connection) -> _Writer:
    dialect = connection.dialect
    if can_copy(connection):
        return copy_rows
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return sqlite_rows
    return core_rows


def copy_rows(connection: sa.Connection, frame: pd.DataFrame, batch_date: date, model_version: str) -> int:
    """COPY a night's rows in CSV through psycopg2, inside the connection's open transaction."""
    return copy_frame(connection, frame.assign(batch_date=batch_date.isoformat(), model_version=model_version))


def copy_frame(connection: sa.Connection, frame: pd.DataFrame, columns: tuple[str, ...] = _TABLE_COLUMNS) -> int:
    """COPY these columns of the frame into `predictions` (psycopg2, the caller's transaction)."""
    dbapi_connection = connection.connection.dbapi_connection
    stored = 0
    with dbapi_connection.cursor() as cursor:
        for start in range(0, len(frame), COPY_ROWS):
            page = frame.iloc[start : start + COPY_ROWS][list(columns)]
            marker = _null_marker(page)
            buffer = io.StringIO()
            page.to_csv(
                buffer, header=False, index=False, na_rep=marker, lineterminator="\n", quoting=csv.QUOTE_MINIMAL
            )
            buffer.seek(0)
            # The marker is our own constant or a uuid, the columns the callers' constants: safe to
            # spell into the statement.
            null = "E'\\\\N'" if marker == _DEFAULT_NULL_MARKER else f"'{marker}'"
            statement = (
                f"COPY {predictions_table.name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL {null})"
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
    text = [page[column] for column in ("example_id", "prediction", "probabilities", "inputs") if column in page]
    while any(column.eq(marker).any() for column in text):
        marker = f"null-{uuid.uuid4().hex}"
    return marker


def sqlite_rows(connection: sa.Connection, frame: pd.DataFrame, batch_date: date, model_version: str) -> int:
    """executemany on the sqlite3 cursor, in pages, inside the connection's open transaction."""
    placeholders = ", ".join("?" for _ in _TABLE_COLUMNS)
    statement = f"INSERT INTO {predictions_table.name} ({', '.join(_TABLE_COLUMNS)}) VALUES ({placeholders})"
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


def core_rows(connection: sa.Connection, frame: pd.DataFrame, batch_date: date, model_version: str) -> int:
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
            nullable(page["score"]),
            page["probabilities"].tolist(),
        )
    )


def _wrapped(connection: sa.Connection, statement: str, exc: Exception) -> BaseException:
    """A raw DBAPI error as SQLAlchemy's matching exception (IntegrityError, DataError, ...)."""
    dialect = connection.dialect
    return sa.exc.DBAPIError.instance(
        statement, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )


def pages(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def nullable(series: pd.Series) -> list:
    """The values as a list, missing ones as None (SQL NULL)."""
    return series.astype(object).where(series.notna(), None).tolist()
