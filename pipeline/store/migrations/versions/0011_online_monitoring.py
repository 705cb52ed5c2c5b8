"""Online answers in monitoring: their inputs kept for the night's drift check, their quality
shown apart from the night's own rows and together with them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

- `predictions.inputs`: for an online row, the row the request sent (JSON text, image columns
  left out); NULL for a night's rows, whose inputs are the night's files. The night's drift check
  reads the day's online inputs beside its files (tasks/monitoring.py).
- `night_quality` gains `origin` in its key: per night, model and origin. The upgrade computes it
  again from the predictions and resolved labels stored.
- `prediction_quality_daily` keeps its rows (one per night and model, online and batch
  together); `prediction_quality_by_origin` has one per night, model and origin.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUALITY_BY_ORIGIN = """
INSERT INTO night_quality
    (batch_date, model_version, origin, predicted, labeled, correct, abs_error_sum, abs_errors)
SELECT p.batch_date, p.model_version, p.origin, COUNT(*), COUNT(r.example_id),
       SUM(CASE WHEN r.example_id IS NOT NULL AND p.prediction = r.label THEN 1 ELSE 0 END),
       SUM(ABS(p.score - r.label_value)), COUNT(ABS(p.score - r.label_value))
FROM predictions p
LEFT JOIN label_resolutions r ON r.example_id = p.example_id AND r.label IS NOT NULL
GROUP BY p.batch_date, p.model_version, p.origin
"""

# Online and batch rows together: the sums of a night's rows of either origin.
PREDICTION_QUALITY_DAILY = """
CREATE VIEW prediction_quality_daily AS
SELECT
    q.batch_date,
    q.model_version,
    q.predicted,
    q.labeled,
    CASE WHEN m.task = 'classification' THEN CAST(q.correct AS DOUBLE PRECISION) / NULLIF(q.labeled, 0) END
        AS accuracy,
    CASE WHEN m.task = 'regression' THEN q.abs_error_sum / NULLIF(q.abs_errors, 0) END AS mae
FROM (
    SELECT batch_date, model_version,
           CAST(SUM(predicted) AS INTEGER) AS predicted, CAST(SUM(labeled) AS INTEGER) AS labeled,
           CAST(SUM(correct) AS INTEGER) AS correct, SUM(abs_error_sum) AS abs_error_sum,
           CAST(SUM(abs_errors) AS INTEGER) AS abs_errors
    FROM night_quality
    GROUP BY batch_date, model_version
) q
LEFT JOIN model_versions m ON m.version = q.model_version
WHERE q.labeled > 0
"""

PREDICTION_QUALITY_BY_ORIGIN = """
CREATE VIEW prediction_quality_by_origin AS
SELECT
    q.batch_date,
    q.model_version,
    q.origin,
    q.predicted,
    q.labeled,
    CASE WHEN m.task = 'classification' THEN CAST(q.correct AS DOUBLE PRECISION) / NULLIF(q.labeled, 0) END
        AS accuracy,
    CASE WHEN m.task = 'regression' THEN q.abs_error_sum / NULLIF(q.abs_errors, 0) END AS mae
FROM night_quality q
LEFT JOIN model_versions m ON m.version = q.model_version
WHERE q.labeled > 0
"""

# 0010's table and view, for the downgrade.
OLD_QUALITY = """
INSERT INTO night_quality (batch_date, model_version, predicted, labeled, correct, abs_error_sum, abs_errors)
SELECT p.batch_date, p.model_version, COUNT(*), COUNT(r.example_id),
       SUM(CASE WHEN r.example_id IS NOT NULL AND p.prediction = r.label THEN 1 ELSE 0 END),
       SUM(ABS(p.score - r.label_value)), COUNT(ABS(p.score - r.label_value))
FROM predictions p
LEFT JOIN label_resolutions r ON r.example_id = p.example_id AND r.label IS NOT NULL
GROUP BY p.batch_date, p.model_version
"""

OLD_PREDICTION_QUALITY_DAILY = """
CREATE VIEW prediction_quality_daily AS
SELECT
    q.batch_date,
    q.model_version,
    q.predicted,
    q.labeled,
    CASE WHEN m.task = 'classification' THEN CAST(q.correct AS DOUBLE PRECISION) / NULLIF(q.labeled, 0) END
        AS accuracy,
    CASE WHEN m.task = 'regression' THEN q.abs_error_sum / NULLIF(q.abs_errors, 0) END AS mae
FROM night_quality q
LEFT JOIN model_versions m ON m.version = q.model_version
WHERE q.labeled > 0
"""


def upgrade() -> None:
    op.add_column("predictions", sa.Column("inputs", sa.Text(), nullable=True))
    op.execute("DROP VIEW prediction_quality_daily")
    op.drop_table("night_quality")
    _create_night_quality(["batch_date", "model_version", "origin"])
    op.execute(QUALITY_BY_ORIGIN)
    op.execute(PREDICTION_QUALITY_DAILY)
    op.execute(PREDICTION_QUALITY_BY_ORIGIN)


def downgrade() -> None:
    op.execute("DROP VIEW prediction_quality_by_origin")
    op.execute("DROP VIEW prediction_quality_daily")
    op.drop_table("night_quality")
    _create_night_quality(["batch_date", "model_version"])
    op.execute(OLD_QUALITY)
    op.execute(OLD_PREDICTION_QUALITY_DAILY)
    # SQLite (3.35 and later) drops a column in place, views reading the table kept.
    op.execute("ALTER TABLE predictions DROP COLUMN inputs")


def _create_night_quality(key: list[str]) -> None:
    origin = [sa.Column("origin", sa.String(8), server_default="batch", nullable=False)] if "origin" in key else []
    op.create_table(
        "night_quality",
        sa.Column("batch_date", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        *origin,
        sa.Column("predicted", sa.Integer(), nullable=False),
        sa.Column("labeled", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("abs_error_sum", sa.Float(), nullable=True),
        sa.Column("abs_errors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_night_quality")),
    )
