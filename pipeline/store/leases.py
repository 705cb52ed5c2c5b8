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

from pipeline.store.tables import runs
from pipeline.store.transactions import lock_key

logger = logging.getLogger(__name__)

# A dead host's session ends after KEEPALIVE_IDLE_S of silence and KEEPALIVE_COUNT unanswered
# probes KEEPALIVE_INTERVAL_S apart: about 40 s instead of the kernel's two hours.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 20, 5, 4


@contextmanager
def output_lease(engine: sa.Engine, location: str, *, owner: str, wait: bool = True) -> Iterator[bool]:
    """Hold the lease on the output at `location` while the block runs.

    Yields True once held. When another session holds it: waits, naming the holder, or with
    `wait=False` yields False at once. On SQLite yields True at once.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key("output", location)
    with engine.connect() as connection:
        _keep_alive(connection)
        held = connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar()
        connection.commit()
        if not held:
            if not wait:
                yield False
                return
            logger.info("%s: %s is being made by %s; waiting for it", owner, location, holder(connection, location))
            connection.execute(sa.select(sa.func.pg_advisory_lock(key)))
            connection.commit()
        try:
            yield True
        finally:
            connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            connection.commit()


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


def _keep_alive(connection: sa.Connection) -> None:
    for setting, value in (
        ("tcp_keepalives_idle", KEEPALIVE_IDLE_S),
        ("tcp_keepalives_interval", KEEPALIVE_INTERVAL_S),
        ("tcp_keepalives_count", KEEPALIVE_COUNT),
    ):
        connection.exec_driver_sql(f"SET {setting} = {int(value)}")
