"""Cost accounting on runs: CPU seconds, peak memory, GPU name and seconds, estimated cost.

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-26

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

Nullable columns only: runs recorded before this revision keep NULL (not measured), and both
backends add them with a plain ALTER TABLE ... ADD COLUMN, without rebuilding `runs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("cpu_s", sa.Float()),  # user + system CPU seconds of the process and its children
    ("peak_memory_mb", sa.Float()),  # peak resident memory of the process so far
    ("gpu_name", sa.String(200)),  # the first visible GPU, NULL without one
    ("gpu_s", sa.Float()),  # seconds the run held the GPU
    ("cost", sa.Float()),  # estimated, in the currency of the configured prices
)


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("runs", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 has no DROP COLUMN and Alembic then rebuilds the table;
    # no view reads `runs`, so none needs dropping first.
    with op.batch_alter_table("runs") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
