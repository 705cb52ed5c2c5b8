"""Table definitions of the run ledger (SQLAlchemy Core).

This module describes the schema as the code expects it; the Alembic migrations in
``migrations/versions`` create it. A test compares the two on both backends, so a change here
needs a new migration.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# Deterministic constraint names: Alembic's batch mode on SQLite can only alter or drop a
# constraint it can name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("running", "succeeded", "failed", "abandoned")
SPLITS = ("train", "validation", "test", "batch")

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(sa.types.TypeDecorator):
    """A timezone-aware timestamp that always reads back as an aware UTC datetime.

    PostgreSQL stores ``timestamptz`` and returns it in the session's time zone; SQLite keeps
    no zone at all. Storing UTC and attaching UTC on the way out makes both backends agree.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _json() -> sa.types.TypeEngine:
    # JSONB on PostgreSQL so analysts get its operators and indexing; JSON text elsewhere.
    # none_as_null: Python None is SQL NULL, not the JSON literal 'null'.
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("params", _json()),
    sa.Column("version", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("git_commit", sa.String(40), nullable=True),
    sa.Column("git_dirty", sa.Boolean(), nullable=True),
    sa.Column("data_version", sa.String(64), nullable=True),
    sa.Column("hardware", _json()),
    sa.Column("packages", _json()),
    sa.Column("output_path", sa.Text()),
    sa.Column("rows_in", sa.Integer(), nullable=True),
    sa.Column("rows_rejected", sa.Integer(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer()),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("duration_s", sa.Float(), nullable=True),
    sa.CheckConstraint(
        "status IN ('running', 'succeeded', 'failed', 'abandoned')", name="status"
    ),
    sa.Index("ix_runs_task_started_at", "task", "started_at"),
    sa.Index("ix_runs_status", "status"),
)

run_metrics = sa.Table(
    "run_metrics",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "run_id",
        sa.String(32),
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("split", sa.String(16), nullable=False),
    # "" means the whole split; NOT NULL so that (run, split, slice, name) compares with "=".
    sa.Column("slice", sa.String(200), nullable=False, default="", server_default=""),
    sa.Column("name", sa.String(64), nullable=False),
    # NaN and infinities are stored as NULL: SQLite and most BI tools cannot handle them.
    sa.Column("value", sa.Float(), nullable=True),
    # NULL for a final figure, the epoch number for training history.
    sa.Column("epoch", sa.Integer(), nullable=True),
    sa.CheckConstraint("split IN ('train', 'validation', 'test', 'batch')", name="split"),
    sa.Index("ix_run_metrics_run_id", "run_id"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("data_version", sa.String(64), primary_key=True),
    sa.Column("path", sa.Text()),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("rows", sa.Integer()),
    sa.Column("columns", _json()),  # list of column names, in file order
    sa.Column("schema", _json()),  # column name -> kind (numeric, categorical, text, image)
    sa.Column("created_at", UtcDateTime()),
)
