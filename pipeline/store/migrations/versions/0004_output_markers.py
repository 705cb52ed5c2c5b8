"""Output markers (an output's rows are complete in this database) and two more night statuses.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

`output_markers` is to overnight what Luigi's `table_updates` is to CopyToTable: a task whose
product includes rows (a registration, a night's drift and feature statistics, late labels, a
night's all-clear) writes its marker in the transaction that writes the rows, and is complete in
a database only when that database holds the marker. `batches.status` may now also be `partial`
(some of the night's files were quarantined) or `missing` (the night's folder did not exist).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('empty', 'loaded')"
NEW_STATUSES = "status IN ('empty', 'loaded', 'partial', 'missing')"


def upgrade() -> None:
    op.create_table(
        "output_markers",
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_output_markers_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("task", "version", name=op.f("pk_output_markers")),
    )
    _batch_statuses(NEW_STATUSES)


def downgrade() -> None:
    op.execute("DELETE FROM batches WHERE status IN ('partial', 'missing')")
    _batch_statuses(OLD_STATUSES)
    op.drop_table("output_markers")


def _batch_statuses(condition: str) -> None:
    # Batch mode: SQLite cannot alter a CHECK constraint in place; Alembic rebuilds the table there
    # (no view reads `batches`), and runs plain ALTER TABLE statements on PostgreSQL.
    with op.batch_alter_table("batches") as batch:
        batch.drop_constraint(op.f("ck_batches_status"), type_="check")
        batch.create_check_constraint(op.f("ck_batches_status"), condition)
