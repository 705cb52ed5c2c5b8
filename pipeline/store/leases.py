"""Who makes an output, held in PostgreSQL: exclusion between hosts that does not rest on `flock`
being shared by their file systems (NFS mounted without locking, a lock folder each host sees
alone).

An output's lease is a session advisory lock, `pg_advisory_lock(key of the output's path)`, on a
connection of its own held while the output is made. The server drops it when that session ends:
at once when the process dies, within about a minute when its host goes down (the session's TCP
keepalives, set here, are what notices). Who holds it is the `runs` row of that output (host,
pid, started, heartbeat), which a waiting process names. SQLite serves one host: its leases are
the output locks' flock alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from pipeline.store.database import DatabaseUnavailable
from pipeline.store.tables import runs
from pipeline.store.transactions import lock_key

logger = logging.getLogger(__name__)

# A dead host's session ends after KEEPALIVE_IDLE_S of silence and KEEPALIVE_COUNT unanswered
# probes KEEPALIVE_INTERVAL_S apart: about 40 s instead of the kernel's two hours.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 20, 5, 4


class LeaseLost(RuntimeError):
    """The database ended the session that held an output's lease: another host may hold it now."""


class Lease:
    """A held lease; `check()` before an output is put in place says whether it is still held."""

    def __init__(self, connection: sa.Connection | None, location: str):
        self._connection, self.location, self.lost = connection, location, False

    def check(self) -> None:
        """Raise LeaseLost when the holding session is gone (a server restart, a network cut the
        keepalives ended): another process may be making the output now."""
        if self._connection is None:
            return
        try:
            self._connection.execute(sa.text("SELECT 1"))
            self._connection.commit()
        except (sa.exc.DBAPIError, DatabaseUnavailable) as error:
            self.lost = True
            self._connection.invalidate()
            raise LeaseLost(
                f"{self.location}: the database session holding this output's lease ended "
                "(a server restart, a network cut); not putting it in place: run the task again"
            ) from error


@contextmanager
def output_lease(engine: sa.Engine, location: str, *, owner: str, wait: bool = True) -> Iterator[Lease | None]:
    """Hold the lease on the output at `location` while the block runs.

    Yields the Lease once held. When another session holds it: waits, naming the holder, or
    with `wait=False` yields None at once. On SQLite yields a Lease at once.
    """
    if engine.dialect.name != "postgresql":
        yield Lease(None, location)
        return
    key = lock_key("output", location)
    connection = engine.connect()
    try:
        _prepare(connection)
        held = connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar()
        connection.commit()
        if not held and not wait:
            connection.close()
            yield None
            return
        if not held:
            logger.info("%s: %s is being made by %s; waiting for it", owner, location, holder(connection, location))
            connection.execute(sa.select(sa.func.pg_advisory_lock(key)))
            connection.commit()
    except BaseException:
        connection.invalidate()  # a lock taken just before the error must not go back to the pool
        connection.close()
        raise
    lease = Lease(connection, location)
    try:
        yield lease
    finally:
        _release(lease, connection, key)


def _release(lease: Lease, connection: sa.Connection, key: int) -> None:
    """Unlock and close; a session that is gone took its lock with it."""
    try:
        if not lease.lost:
            connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            connection.commit()
    except (sa.exc.DBAPIError, DatabaseUnavailable) as error:
        logger.warning("%s: the lease's session had ended already: %s", lease.location, error)
        connection.invalidate()
    finally:
        connection.close()


def holder(connection: sa.Connection, location: str) -> str:
    """Who is making the output, in words, from its running `runs` row."""
    row = connection.execute(
        sa.select(runs.c.host, runs.c.pid, runs.c.started_at, runs.c.heartbeat_at)
        .where(runs.c.output_path == location, runs.c.status == "running")
        .order_by(runs.c.started_at.desc())
        .limit(1)
    ).first()
    connection.commit()
    if row is None:
        return "another process (its run is not recorded yet)"
    heartbeat = f", alive at {row.heartbeat_at:%H:%M:%S}" if row.heartbeat_at else ""
    return f"pid {row.pid} on {row.host} (since {row.started_at:%H:%M:%S}{heartbeat})"


def _prepare(connection: sa.Connection) -> None:
    """Keepalives that end a dead host's session, and no server-wide timeout that would end a
    live holder's (idle_session_timeout, PostgreSQL 14 and later) or fail a waiter."""
    settings = {
        "tcp_keepalives_idle": KEEPALIVE_IDLE_S,
        "tcp_keepalives_interval": KEEPALIVE_INTERVAL_S,
        "tcp_keepalives_count": KEEPALIVE_COUNT,
        "lock_timeout": 0,
        "statement_timeout": 0,
        "idle_in_transaction_session_timeout": 0,
    }
    if (connection.dialect.server_version_info or (0,)) >= (14,):
        settings["idle_session_timeout"] = 0
    for setting, value in settings.items():
        connection.execute(sa.select(sa.func.set_config(setting, str(value), False)))  # SET, for the session
