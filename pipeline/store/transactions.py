"""Transactions that hold a write lock from their first statement, and what a lost connection means.

Every writer of the store that must not interleave with another (a night's load, a registry
change, late labels) runs in `locked_transaction`. A connection lost mid-transaction (a server
restart, a killed backend) is reported as DatabaseUnavailable saying whether anything was stored.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from pipeline.store.database import DatabaseUnavailable, describe, unavailable

logger = logging.getLogger(__name__)


def lock_key(*parts: str) -> int:
    """A 64-bit PostgreSQL advisory lock key for the thing the parts name."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def locked_transaction(engine: sa.Engine, lock_key: int) -> Iterator[sa.Connection]:
    """One transaction that holds a write lock from its first statement, committed on success.

    PostgreSQL: ``pg_advisory_xact_lock(lock_key)`` (released at commit or rollback), so a second
    writer of the same thing waits, then sees the first one's result. SQLite: ``BEGIN
    IMMEDIATE`` (one writer anyway; pysqlite would otherwise BEGIN only at the first write, letting
    check-then-write interleave with another process).

    Raises:
        DatabaseUnavailable: the connection was lost (a server restart, a killed backend) before
            the commit, so the server rolled the transaction back: nothing of it was stored. Also
            raised, saying so, when the connection is lost during the commit itself, whose
            outcome is then unknown. The dead connection is discarded, not pooled.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key)))
        try:
            yield connection
        except BaseException as error:
            lost = _lost_connection(connection, error)
            if lost is None:
                connection.rollback()
                raise
            _discard(connection)
            raise unavailable(
                _shown_url(engine),
                "the connection was lost during a transaction, which the server rolled back "
                f"(nothing of it was stored): {describe(lost)}",
            ) from error
        try:
            connection.commit()
        except BaseException as error:
            lost = _lost_connection(connection, error)
            if lost is None:
                raise
            _discard(connection)
            raise unavailable(
                _shown_url(engine),
                f"the connection was lost while committing; the outcome is unknown, run again: {describe(lost)}",
            ) from error


def _lost_connection(connection: sa.Connection, error: BaseException) -> BaseException | None:
    """The driver error behind ``error`` when it means the connection is gone, else None.

    Recognises what the handle_error hook made of a lost connection (DatabaseUnavailable),
    SQLAlchemy's wrapped errors, and raw driver errors (a COPY through the driver's cursor).
    """
    original: BaseException | None = error
    if isinstance(original, DatabaseUnavailable):
        original = original.__cause__
    if isinstance(original, sa_exc.DBAPIError):
        if original.connection_invalidated:
            return original.orig
        original = original.orig
    if original is None or not isinstance(original, connection.dialect.loaded_dbapi.Error):
        return None
    if connection.invalidated:
        return original
    dbapi_connection = connection.connection.dbapi_connection
    return original if connection.dialect.is_disconnect(original, dbapi_connection, None) else None


def _discard(connection: sa.Connection) -> None:
    """Throw a dead connection away (never back into the pool) and end its transaction."""
    if not connection.invalidated:
        connection.invalidate()
    try:
        connection.rollback()  # no round trip: an invalidated connection only resets its state
    except sa_exc.SQLAlchemyError:
        logger.debug("rollback of a lost connection failed", exc_info=True)


def _shown_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
