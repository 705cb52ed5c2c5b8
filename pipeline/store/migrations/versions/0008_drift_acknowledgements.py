"""Drift acknowledgements: a person's "seen it" that stops an alert failing the night.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

`drift_acknowledgements` is append-only, like `model_events`: `overnight drift ack` writes one
`ack` row per (feature, method) it covers, with the score it acknowledged and the ceiling
(score times `[drift] acknowledged_factor`) above which the same alert fails the night again;
`overnight drift unack` writes an `unack` row naming the `ack` row it ends, from the night after
the latest one monitored (its batch_date): nights that passed under it stay acknowledged.
Nothing is updated or
deleted, so who silenced what, when and why stays readable.

`drift_alerts` gains `acknowledged_by` (the id of the `ack` row that covers the alert, NULL when
none does) and `acknowledged`. An acknowledgement covers an alert of its feature and method on a
night from its `since` date (the acknowledged night, or an earlier one asked for) up to its
`until` date (none: until ended), while its score stays at or under the ceiling: nights that
failed before it was made are not rewritten as let pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DRIFT_ALERTS = """
CREATE VIEW drift_alerts AS
SELECT alerts.*, alerts.acknowledged_by IS NOT NULL AS acknowledged
FROM (
    SELECT d.batch_date, d.model_version, d.feature, d.method, d.score, d.threshold,
           (SELECT MIN(a.id) FROM drift_acknowledgements a
            WHERE a.event = 'ack' AND a.feature = d.feature AND a.method = d.method
              AND (a.since IS NULL OR d.batch_date >= a.since)
              AND (a.until IS NULL OR d.batch_date <= a.until)
              AND (a.ceiling IS NULL OR d.score <= a.ceiling)
              AND NOT EXISTS (
                  SELECT 1 FROM drift_acknowledgements ended
                  WHERE ended.event = 'unack' AND ended.ends = a.id
                    AND (ended.batch_date IS NULL OR d.batch_date >= ended.batch_date)
              )) AS acknowledged_by
    FROM drift d
    WHERE d.alert
) alerts
"""

# 0002's view, for the downgrade.
OLD_DRIFT_ALERTS = """
CREATE VIEW drift_alerts AS
SELECT d.batch_date, d.model_version, d.feature, d.method, d.score, d.threshold
FROM drift d
WHERE d.alert
"""


def upgrade() -> None:
    op.create_table(
        "drift_acknowledgements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event", sa.String(8), nullable=False),
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("ceiling", sa.Float(), nullable=True),
        sa.Column("batch_date", sa.Date(), nullable=True),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("ends", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("event IN ('ack', 'unack')", name=op.f("ck_drift_acknowledgements_event")),
        sa.ForeignKeyConstraint(
            ["ends"], ["drift_acknowledgements.id"], name=op.f("fk_drift_acknowledgements_ends_drift_acknowledgements")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_acknowledgements")),
    )
    op.create_index("ix_drift_acknowledgements_feature", "drift_acknowledgements", ["feature", "method"])
    op.create_index("ix_drift_acknowledgements_ends", "drift_acknowledgements", ["ends"])
    op.execute("DROP VIEW IF EXISTS drift_alerts")
    op.execute(DRIFT_ALERTS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS drift_alerts")
    op.execute(OLD_DRIFT_ALERTS)
    op.drop_index("ix_drift_acknowledgements_ends", table_name="drift_acknowledgements")
    op.drop_index("ix_drift_acknowledgements_feature", table_name="drift_acknowledgements")
    op.drop_table("drift_acknowledgements")
