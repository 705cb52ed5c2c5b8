"""Predictions answered online (`overnight serve`) beside the nightly ones.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

`predictions` gains `origin` ('batch' for a night's rows, the default, so that a night's COPY
need not name it; 'online' for the server's) and `requested_at` (when the server received the
request; NULL for a night's rows). `origin` joins the primary key: the server may answer for an
example on the day a night scores it too, and reloading a night replaces its batch rows only.
An online row's batch_date is the UTC day of its request.

SQLite cannot change a primary key in place: the table is copied (Alembic's batch mode), and the
views that read it are dropped first and created again from their stored SQL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ["batch_date", "example_id", "model_version"]
NEW_KEY = [*OLD_KEY, "origin"]


def upgrade() -> None:
    with _views_kept(), op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("origin", sa.String(8), server_default="batch", nullable=False))
        batch.add_column(sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint("origin", "origin IN ('batch', 'online')")
        batch.drop_constraint("pk_predictions", type_="primary")
        batch.create_primary_key("pk_predictions", NEW_KEY)


def downgrade() -> None:
    op.execute("DELETE FROM predictions WHERE origin = 'online'")
    with _views_kept(), op.batch_alter_table("predictions") as batch:
        batch.drop_constraint("pk_predictions", type_="primary")
        batch.create_primary_key("pk_predictions", OLD_KEY)
        batch.drop_constraint(op.f("ck_predictions_origin"), type_="check")
        batch.drop_column("requested_at")
        batch.drop_column("origin")


@contextlib.contextmanager
def _views_kept() -> Iterator[None]:
    """On SQLite, the views are dropped around the table's copy and created again as they were
    (renaming the copy into place fails while a view names the missing table)."""
    bind = op.get_bind()
    views = []
    if bind.dialect.name == "sqlite":
        views = bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid").all()
        for name, _ in views:
            op.execute(f'DROP VIEW "{name}"')
    yield
    for _, sql in views:
        op.execute(sql)
