"""Output markers: the rows of an output are complete in this database.

A task whose product includes rows writes its marker in the transaction that writes the rows
(`write`, on the caller's connection), as Luigi's CopyToTable writes its `table_updates` row. One
data folder can then serve several databases: a folder made while another database was
configured does not make this database's rows complete.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from pipeline.common.clock import utc_now
from pipeline.store.tables import output_markers


@dataclass(frozen=True)
class Marker:
    task: str  # the task family, e.g. MonitorDrift
    version: str  # the output's version
    run_id: str | None = None  # the run that wrote the rows


def write(connection: sa.Connection, marker: Marker) -> None:
    """Mark the output complete, inside the caller's transaction (a rerun marks it again)."""
    key = (output_markers.c.task == marker.task) & (output_markers.c.version == marker.version)
    connection.execute(sa.delete(output_markers).where(key))
    row = {"task": marker.task, "version": marker.version, "run_id": marker.run_id, "marked_at": utc_now()}
    connection.execute(sa.insert(output_markers), row)


def mark(engine: sa.Engine, marker: Marker) -> None:
    """Mark the output complete in a transaction of its own (its rows were written before, idempotently)."""
    with engine.begin() as connection:
        write(connection, marker)


def is_marked(engine: sa.Engine, task: str, version: str) -> bool:
    query = sa.select(output_markers.c.task).where(output_markers.c.task == task, output_markers.c.version == version)
    with engine.connect() as connection:
        return connection.execute(query).first() is not None
