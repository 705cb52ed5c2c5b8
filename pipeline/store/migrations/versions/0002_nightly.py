"""Model registry, nightly batches, prediction log, feedback, drift; analyst views.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-25

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

The views are plain SQL that SQLite and PostgreSQL both accept: no ORDER BY, booleans tested
as truth values, floats as DOUBLE PRECISION (REAL affinity on SQLite). A later migration that
rebuilds a table a view reads (SQLite batch mode) must drop the view first and recreate it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


DRIFT_ALERTS = """
CREATE VIEW drift_alerts AS
SELECT d.batch_date, d.model_version, d.feature, d.method, d.score, d.threshold
FROM drift d
WHERE d.alert
"""

# One row per (batch_date, model_version) that has at least one label. accuracy for
# classification models, mae for regression models (task from model_versions; both NULL for a
# model that was never registered). A prediction without a label counts in `predicted` only.
PREDICTION_QUALITY_DAILY = """
CREATE VIEW prediction_quality_daily AS
SELECT
    p.batch_date,
    p.model_version,
    COUNT(*) AS predicted,
    COUNT(f.example_id) AS labeled,
    CASE WHEN m.task = 'classification' THEN
        CAST(SUM(CASE WHEN f.example_id IS NOT NULL AND p.prediction = f.label THEN 1 ELSE 0 END)
             AS DOUBLE PRECISION)
        / NULLIF(COUNT(f.example_id), 0)
    END AS accuracy,
    CASE WHEN m.task = 'regression' THEN
        AVG(ABS(p.score - f.label_value))
    END AS mae
FROM predictions p
LEFT JOIN feedback f ON f.example_id = p.example_id
LEFT JOIN model_versions m ON m.version = p.model_version
GROUP BY p.batch_date, p.model_version, m.task
HAVING COUNT(f.example_id) > 0
"""

# Unlabeled predictions; callers order by score ascending (least confident first).
LABELING_QUEUE = """
CREATE VIEW labeling_queue AS
SELECT p.batch_date, p.example_id, p.model_version, p.prediction, p.score, p.probabilities
FROM predictions p
WHERE NOT EXISTS (SELECT 1 FROM feedback f WHERE f.example_id = p.example_id)
"""

VIEWS = {
    "drift_alerts": DRIFT_ALERTS,
    "prediction_quality_daily": PREDICTION_QUALITY_DAILY,
    "labeling_queue": LABELING_QUEUE,
}


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("task", sa.String(16), nullable=True),
        sa.Column("data_version", sa.String(64), nullable=True),
        sa.Column("evaluation_path", sa.Text(), nullable=True),
        sa.Column("headline", sa.Float(), nullable=True),
        sa.Column("metrics", _json(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("stage IN ('candidate', 'production', 'archived')", name=op.f("ck_model_versions_stage")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_model_versions_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
    )
    # At most one production model, enforced by the database on both backends.
    op.create_index(
        "ux_model_versions_production",
        "model_versions",
        ["stage"],
        unique=True,
        sqlite_where=sa.text("stage = 'production'"),
        postgresql_where=sa.text("stage = 'production'"),
    )

    op.create_table(
        "model_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "event IN ('register', 'promote', 'rollback', 'archive')", name=op.f("ck_model_events_event")
        ),
        sa.ForeignKeyConstraint(
            ["version"], ["model_versions.version"], name=op.f("fk_model_events_version_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_events")),
    )
    op.create_index("ix_model_events_version", "model_events", ["version"])
    op.create_index("ix_model_events_at", "model_events", ["at"])

    op.create_table(
        "batches",
        sa.Column("batch_date", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("rows_in", sa.Integer(), nullable=True),
        sa.Column("rows_rejected", sa.Integer(), nullable=True),
        sa.Column("rows_scored", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.CheckConstraint("status IN ('empty', 'loaded')", name=op.f("ck_batches_status")),
        sa.PrimaryKeyConstraint("batch_date", "model_version", name=op.f("pk_batches")),
    )

    op.create_table(
        "predictions",
        sa.Column("batch_date", sa.Date(), nullable=False),
        sa.Column("example_id", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("prediction", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("probabilities", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("batch_date", "example_id", "model_version", name=op.f("pk_predictions")),
    )
    op.create_index("ix_predictions_example_id", "predictions", ["example_id"])

    op.create_table(
        "feedback",
        sa.Column("example_id", sa.String(200), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("label_value", sa.Float(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("example_id", name=op.f("pk_feedback")),
    )

    op.create_table(
        "feature_stats",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_date", sa.Date(), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("feature", sa.String(200), nullable=True),
        sa.Column("statistic", sa.String(32), nullable=True),
        sa.Column("batch_value", sa.Float(), nullable=True),
        sa.Column("reference_value", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_stats")),
    )
    op.create_index("ix_feature_stats_batch_date_model_version", "feature_stats", ["batch_date", "model_version"])

    op.create_table(
        "drift",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_date", sa.Date(), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("feature", sa.String(200), nullable=True),
        sa.Column("method", sa.String(16), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("alert", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift")),
    )
    op.create_index("ix_drift_batch_date_model_version", "drift", ["batch_date", "model_version"])

    for sql in VIEWS.values():
        op.execute(sql)


def downgrade() -> None:
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index("ix_drift_batch_date_model_version", table_name="drift")
    op.drop_table("drift")
    op.drop_index("ix_feature_stats_batch_date_model_version", table_name="feature_stats")
    op.drop_table("feature_stats")
    op.drop_table("feedback")
    op.drop_index("ix_predictions_example_id", table_name="predictions")
    op.drop_table("predictions")
    op.drop_table("batches")
    op.drop_index("ix_model_events_at", table_name="model_events")
    op.drop_index("ix_model_events_version", table_name="model_events")
    op.drop_table("model_events")
    op.drop_index("ux_model_versions_production", table_name="model_versions")
    op.drop_table("model_versions")
