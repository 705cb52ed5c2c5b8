"""Runs that say they are alive: `runs.heartbeat_at`, so that any host can settle a dead host's run.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

A running run's process writes the time here every `[overnight] run_lease_s` / 3 seconds. A run
of another host whose heartbeat is older than the lease is `abandoned` by whichever process
settles runs next (pipeline/store/ledger.py): a pid means nothing on another host, a heartbeat
does. NULL for runs recorded before this revision: judged by their pid alone, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
