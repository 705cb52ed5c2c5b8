"""Baseline metrics: `run_metrics.baseline` names the baseline a figure belongs to.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

Every evaluation also scores simple baselines on its test rows (pipeline/stages/baselines.py).
Their figures are rows of the evaluation's run like the model's, told apart by this column:
'' for the run's own model (every row recorded before this revision), else the baseline's
name (majority, mean, linear, tfidf_logistic, gradient_boosting). NOT NULL with a default of ''
so that `baseline = ''` selects the model's own figures on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("run_metrics", sa.Column("baseline", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("run_metrics") as batch:
        batch.drop_column("baseline")
