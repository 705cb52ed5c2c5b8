"""Label resolutions and per-night quality: monitoring whose cost does not grow with history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

0006's `resolved_labels` view ran window functions over every row of `feedback`, and the views
joining it (prediction_quality_daily, label_conflicts_daily, annotator_agreement) could not be
narrowed to the nights asked about: on SQLite the view was evaluated again for each prediction,
so a 14-night quality read took 31 s at 18,000 predictions and grew with the square of history.

Now the rule is applied when labels load, and its results are stored (pipeline/store/resolutions.py
keeps them in the transaction that writes the labels or the night's predictions):
- label_resolutions: one row per labeled example, the columns resolved_labels had; recomputed for
  the examples a load touches, and for all of them when a tie-break rank that decided a label
  changes.
- night_quality: per night and model, predictions, resolved labels, correct predictions and the
  absolute errors' sum and count; recomputed for the nights of the examples a label load touches
  and for the night a batch load writes.
- night_conflicts: per night, model and predicted class, examples labeled by two or more
  annotators and how many of them disagree (only classes with such examples).

The views keep their names and columns and become reads of these tables by primary key:
resolved_labels is label_resolutions; prediction_quality_daily and label_conflicts_daily read the
per-night rows; annotator_agreement joins feedback to label_resolutions by example. The upgrade
fills the tables from the labels and predictions stored; the downgrade restores 0006's views.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0006's rule, as a SELECT over every label (the backfill); the code's copy narrows it by example.
RESOLVE_ALL = """
WITH votes AS (
    SELECT f.example_id, f.label, COUNT(*) AS votes, MIN(a.tie_rank) AS best_rank,
           MAX(f.label_value) AS label_value, MAX(f.received_at) AS received_at
    FROM feedback f
    LEFT JOIN annotators a ON a.annotator = f.annotator
    GROUP BY f.example_id, f.label
),
counted AS (
    SELECT v.example_id, v.label, v.votes, v.best_rank, v.label_value,
           COUNT(*) OVER (PARTITION BY v.example_id) AS distinct_labels,
           SUM(v.votes) OVER (PARTITION BY v.example_id) AS annotators,
           MAX(v.votes) OVER (PARTITION BY v.example_id) AS top_votes,
           MAX(v.received_at) OVER (PARTITION BY v.example_id) AS received_at
    FROM votes v
),
top AS (
    SELECT c.*,
           COUNT(*) OVER (PARTITION BY c.example_id) AS tied,
           ROW_NUMBER() OVER (
               PARTITION BY c.example_id
               ORDER BY CASE WHEN c.best_rank IS NULL THEN 1 ELSE 0 END, c.best_rank, c.label
           ) AS pick
    FROM counted c
    WHERE c.votes = c.top_votes
)
INSERT INTO label_resolutions
    (example_id, label, label_value, annotators, agreeing, distinct_labels, status, received_at)
SELECT
    example_id,
    CASE WHEN tied = 1 OR best_rank IS NOT NULL THEN label END,
    CASE WHEN tied = 1 OR best_rank IS NOT NULL THEN label_value END,
    CAST(annotators AS INTEGER),
    CAST(CASE WHEN tied = 1 OR best_rank IS NOT NULL THEN votes ELSE 0 END AS INTEGER),
    CAST(distinct_labels AS INTEGER),
    CASE
        WHEN distinct_labels = 1 THEN 'unanimous'
        WHEN tied = 1 THEN 'majority'
        WHEN best_rank IS NOT NULL THEN 'tie_broken'
        ELSE 'unresolved'
    END,
    received_at
FROM top
WHERE pick = 1
"""

QUALITY_ALL = """
INSERT INTO night_quality (batch_date, model_version, predicted, labeled, correct, abs_error_sum, abs_errors)
SELECT p.batch_date, p.model_version, COUNT(*), COUNT(r.example_id),
       SUM(CASE WHEN r.example_id IS NOT NULL AND p.prediction = r.label THEN 1 ELSE 0 END),
       SUM(ABS(p.score - r.label_value)), COUNT(ABS(p.score - r.label_value))
FROM predictions p
LEFT JOIN label_resolutions r ON r.example_id = p.example_id AND r.label IS NOT NULL
GROUP BY p.batch_date, p.model_version
"""

CONFLICTS_ALL = """
INSERT INTO night_conflicts (batch_date, model_version, predicted_class, relabeled, conflicting)
SELECT p.batch_date, p.model_version, p.prediction, COUNT(*),
       SUM(CASE WHEN r.distinct_labels > 1 THEN 1 ELSE 0 END)
FROM predictions p
JOIN label_resolutions r ON r.example_id = p.example_id
WHERE r.annotators > 1
GROUP BY p.batch_date, p.model_version, p.prediction
"""

RESOLVED_LABELS = """
CREATE VIEW resolved_labels AS
SELECT example_id, label, label_value, annotators, agreeing, distinct_labels, status, received_at
FROM label_resolutions
"""

ANNOTATOR_AGREEMENT = """
CREATE VIEW annotator_agreement AS
SELECT
    f.annotator,
    COUNT(*) AS labels,
    SUM(CASE WHEN r.annotators > 1 THEN 1 ELSE 0 END) AS compared,
    SUM(CASE WHEN r.annotators > 1 AND f.label = r.label THEN 1 ELSE 0 END) AS agreed,
    CAST(SUM(CASE WHEN r.annotators > 1 AND f.label = r.label THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
        / NULLIF(SUM(CASE WHEN r.annotators > 1 THEN 1 ELSE 0 END), 0) AS agreement,
    MAX(f.received_at) AS last_label_at
FROM feedback f
JOIN label_resolutions r ON r.example_id = f.example_id
GROUP BY f.annotator
"""

LABEL_CONFLICTS_DAILY = """
CREATE VIEW label_conflicts_daily AS
SELECT batch_date, model_version, predicted_class, relabeled, conflicting,
       CAST(conflicting AS DOUBLE PRECISION) / relabeled AS conflict_share
FROM night_conflicts
"""

# The task decides which figure a night shows, read from the registry now, as 0006's view did.
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
FROM night_quality q
LEFT JOIN model_versions m ON m.version = q.model_version
WHERE q.labeled > 0
"""

# 0006's views as they were, for the downgrade.
OLD_RESOLVED_LABELS = """
CREATE VIEW resolved_labels AS
WITH votes AS (
    SELECT f.example_id, f.label, COUNT(*) AS votes, MIN(a.tie_rank) AS best_rank,
           MAX(f.label_value) AS label_value, MAX(f.received_at) AS received_at
    FROM feedback f
    LEFT JOIN annotators a ON a.annotator = f.annotator
    GROUP BY f.example_id, f.label
),
counted AS (
    SELECT v.example_id, v.label, v.votes, v.best_rank, v.label_value,
           COUNT(*) OVER (PARTITION BY v.example_id) AS distinct_labels,
           SUM(v.votes) OVER (PARTITION BY v.example_id) AS annotators,
           MAX(v.votes) OVER (PARTITION BY v.example_id) AS top_votes,
           MAX(v.received_at) OVER (PARTITION BY v.example_id) AS received_at
    FROM votes v
),
top AS (
    SELECT c.*,
           COUNT(*) OVER (PARTITION BY c.example_id) AS tied,
           ROW_NUMBER() OVER (
               PARTITION BY c.example_id
               ORDER BY CASE WHEN c.best_rank IS NULL THEN 1 ELSE 0 END, c.best_rank, c.label
           ) AS pick
    FROM counted c
    WHERE c.votes = c.top_votes
)
SELECT
    example_id,
    CASE WHEN tied = 1 OR best_rank IS NOT NULL THEN label END AS label,
    CASE WHEN tied = 1 OR best_rank IS NOT NULL THEN label_value END AS label_value,
    CAST(annotators AS INTEGER) AS annotators,
    CAST(CASE WHEN tied = 1 OR best_rank IS NOT NULL THEN votes ELSE 0 END AS INTEGER) AS agreeing,
    CAST(distinct_labels AS INTEGER) AS distinct_labels,
    CASE
        WHEN distinct_labels = 1 THEN 'unanimous'
        WHEN tied = 1 THEN 'majority'
        WHEN best_rank IS NOT NULL THEN 'tie_broken'
        ELSE 'unresolved'
    END AS status,
    received_at
FROM top
WHERE pick = 1
"""

OLD_ANNOTATOR_AGREEMENT = """
CREATE VIEW annotator_agreement AS
SELECT
    f.annotator,
    COUNT(*) AS labels,
    SUM(CASE WHEN r.annotators > 1 THEN 1 ELSE 0 END) AS compared,
    SUM(CASE WHEN r.annotators > 1 AND f.label = r.label THEN 1 ELSE 0 END) AS agreed,
    CAST(SUM(CASE WHEN r.annotators > 1 AND f.label = r.label THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
        / NULLIF(SUM(CASE WHEN r.annotators > 1 THEN 1 ELSE 0 END), 0) AS agreement,
    MAX(f.received_at) AS last_label_at
FROM feedback f
JOIN resolved_labels r ON r.example_id = f.example_id
GROUP BY f.annotator
"""

OLD_LABEL_CONFLICTS_DAILY = """
CREATE VIEW label_conflicts_daily AS
SELECT
    p.batch_date,
    p.model_version,
    p.prediction AS predicted_class,
    COUNT(*) AS relabeled,
    SUM(CASE WHEN r.distinct_labels > 1 THEN 1 ELSE 0 END) AS conflicting,
    CAST(SUM(CASE WHEN r.distinct_labels > 1 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) / COUNT(*) AS conflict_share
FROM predictions p
JOIN resolved_labels r ON r.example_id = p.example_id
WHERE r.annotators > 1
GROUP BY p.batch_date, p.model_version, p.prediction
"""

OLD_PREDICTION_QUALITY_DAILY = """
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
LEFT JOIN resolved_labels f ON f.example_id = p.example_id AND f.label IS NOT NULL
LEFT JOIN model_versions m ON m.version = p.model_version
GROUP BY p.batch_date, p.model_version, m.task
HAVING COUNT(f.example_id) > 0
"""

# In creation order; dropped in reverse (the later ones read resolved_labels in 0006).
VIEWS = {
    "resolved_labels": RESOLVED_LABELS,
    "annotator_agreement": ANNOTATOR_AGREEMENT,
    "label_conflicts_daily": LABEL_CONFLICTS_DAILY,
    "prediction_quality_daily": PREDICTION_QUALITY_DAILY,
}
OLD_VIEWS = {
    "resolved_labels": OLD_RESOLVED_LABELS,
    "annotator_agreement": OLD_ANNOTATOR_AGREEMENT,
    "label_conflicts_daily": OLD_LABEL_CONFLICTS_DAILY,
    "prediction_quality_daily": OLD_PREDICTION_QUALITY_DAILY,
}


def _drop_views(names) -> None:
    for name in reversed(list(names)):
        op.execute(f"DROP VIEW IF EXISTS {name}")


def upgrade() -> None:
    _drop_views(OLD_VIEWS)
    op.create_table(
        "label_resolutions",
        sa.Column("example_id", sa.String(200), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("label_value", sa.Float(), nullable=True),
        sa.Column("annotators", sa.Integer(), nullable=False),
        sa.Column("agreeing", sa.Integer(), nullable=False),
        sa.Column("distinct_labels", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("example_id", name=op.f("pk_label_resolutions")),
    )
    # The adjudication query (cookbook 12) asks for the few examples whose labels differ, kappa
    # (annotator_pairs, every label load) for the examples two or more annotators labeled.
    op.create_index("ix_label_resolutions_distinct_labels", "label_resolutions", ["distinct_labels"])
    op.create_index("ix_label_resolutions_annotators", "label_resolutions", ["annotators"])
    op.create_table(
        "night_quality",
        sa.Column("batch_date", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("predicted", sa.Integer(), nullable=False),
        sa.Column("labeled", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("abs_error_sum", sa.Float(), nullable=True),
        sa.Column("abs_errors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("batch_date", "model_version", name=op.f("pk_night_quality")),
    )
    # A surrogate key: the predicted class may be NULL, which no primary key column may hold.
    op.create_table(
        "night_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_date", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("predicted_class", sa.Text(), nullable=True),
        sa.Column("relabeled", sa.Integer(), nullable=False),
        sa.Column("conflicting", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_night_conflicts")),
    )
    op.create_index("ix_night_conflicts_batch_date_model_version", "night_conflicts", ["batch_date", "model_version"])
    op.execute(RESOLVE_ALL)
    op.execute(QUALITY_ALL)
    op.execute(CONFLICTS_ALL)
    for sql in VIEWS.values():
        op.execute(sql)


def downgrade() -> None:
    _drop_views(VIEWS)
    op.drop_index("ix_night_conflicts_batch_date_model_version", table_name="night_conflicts")
    op.drop_table("night_conflicts")
    op.drop_table("night_quality")
    op.drop_index("ix_label_resolutions_annotators", table_name="label_resolutions")
    op.drop_index("ix_label_resolutions_distinct_labels", table_name="label_resolutions")
    op.drop_table("label_resolutions")
    for sql in OLD_VIEWS.values():
        op.execute(sql)
