"""Annotators: every label kept with who gave it, one resolved label per example, agreement.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

`feedback` was keyed by `example_id` alone, so a second person's label replaced the first. It is
now keyed by (example_id, annotator): one row per example and annotator. Rows stored before this
revision get the annotator `unknown`, what a feedback file without an annotator column gets
(`[labeling] default_annotator`). `annotators` holds the tie-break order of `[labeling]
tie_order` (IngestFeedback writes it); `annotator_pairs` holds Cohen's kappa of every two
annotators over the examples both labeled (scikit-learn computes it when labels load).

Views (plain SQL both backends run; window functions need SQLite 3.25):
- resolved_labels: one row per labeled example. The label most annotators gave wins; a tie goes
  to the tied label whose best-placed annotator comes first in tie_order, and is otherwise left
  unresolved (label NULL). status: unanimous, majority, tie_broken or unresolved.
- annotator_agreement: per annotator, labels given and agreement with the resolved label on the
  examples someone else labeled too; an unresolved example agrees with nobody (left out, two
  annotators who always disagree would each look perfect).
- label_conflicts_daily: per night, model and predicted class, the share of examples labeled by
  two or more annotators whose labels differ.
- prediction_quality_daily now counts resolved labels only; labeling_queue is unchanged (an
  example with any label is not queued) but is rebuilt with the others: SQLite's batch mode
  recreates `feedback`, and a view must not outlive the table it reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNKNOWN_ANNOTATOR = "unknown"

RESOLVED_LABELS = """
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
JOIN resolved_labels r ON r.example_id = f.example_id
GROUP BY f.annotator
"""

LABEL_CONFLICTS_DAILY = """
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

# As in 0002, but over resolved labels: an example whose annotators tie without a tie-break
# counts as predicted, not labeled.
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
LEFT JOIN resolved_labels f ON f.example_id = p.example_id AND f.label IS NOT NULL
LEFT JOIN model_versions m ON m.version = p.model_version
GROUP BY p.batch_date, p.model_version, m.task
HAVING COUNT(f.example_id) > 0
"""

LABELING_QUEUE = """
CREATE VIEW labeling_queue AS
SELECT p.batch_date, p.example_id, p.model_version, p.prediction, p.score, p.probabilities
FROM predictions p
WHERE NOT EXISTS (SELECT 1 FROM feedback f WHERE f.example_id = p.example_id)
"""

# 0002's views as they were, for the downgrade.
OLD_PREDICTION_QUALITY_DAILY = PREDICTION_QUALITY_DAILY.replace(
    "LEFT JOIN resolved_labels f ON f.example_id = p.example_id AND f.label IS NOT NULL",
    "LEFT JOIN feedback f ON f.example_id = p.example_id",
)
VIEWS = {
    "resolved_labels": RESOLVED_LABELS,
    "annotator_agreement": ANNOTATOR_AGREEMENT,
    "label_conflicts_daily": LABEL_CONFLICTS_DAILY,
    "prediction_quality_daily": PREDICTION_QUALITY_DAILY,
    "labeling_queue": LABELING_QUEUE,
}
OLD_VIEWS = {"prediction_quality_daily": OLD_PREDICTION_QUALITY_DAILY, "labeling_queue": LABELING_QUEUE}


def _drop_views(names) -> None:
    for name in reversed(list(names)):
        op.execute(f"DROP VIEW IF EXISTS {name}")


def upgrade() -> None:
    _drop_views(OLD_VIEWS)
    with op.batch_alter_table("feedback", recreate="always") as batch:
        batch.add_column(sa.Column("annotator", sa.String(200), nullable=False, server_default=UNKNOWN_ANNOTATOR))
        batch.drop_constraint("pk_feedback", type_="primary")
        batch.create_primary_key("pk_feedback", ["example_id", "annotator"])
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("annotator", server_default=None, existing_type=sa.String(200), existing_nullable=False)
    op.create_index("ix_feedback_annotator", "feedback", ["annotator"])
    op.create_table(
        "annotators",
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("tie_rank", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("annotator", name=op.f("pk_annotators")),
    )
    op.create_table(
        "annotator_pairs",
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("other", sa.String(200), nullable=False),
        sa.Column("overlap", sa.Integer(), nullable=False),
        sa.Column("agreement", sa.Float(), nullable=True),
        sa.Column("kappa", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("annotator", "other", name=op.f("pk_annotator_pairs")),
    )
    for sql in VIEWS.values():
        op.execute(sql)


def downgrade() -> None:
    _drop_views(VIEWS)
    op.drop_table("annotator_pairs")
    op.drop_table("annotators")
    op.drop_index("ix_feedback_annotator", table_name="feedback")
    # Back to one label per example: the newest wins, as a second label did before 0006.
    # (A label without a time is older than any with one; between equals, the later name stays.)
    op.execute(
        "DELETE FROM feedback WHERE EXISTS (SELECT 1 FROM feedback newer WHERE newer.example_id = feedback.example_id"
        " AND (newer.received_at > feedback.received_at"
        " OR (feedback.received_at IS NULL AND newer.received_at IS NOT NULL)"
        " OR ((newer.received_at = feedback.received_at"
        " OR (newer.received_at IS NULL AND feedback.received_at IS NULL))"
        " AND newer.annotator > feedback.annotator)))"
    )
    with op.batch_alter_table("feedback", recreate="always") as batch:
        batch.drop_constraint("pk_feedback", type_="primary")
        batch.create_primary_key("pk_feedback", ["example_id"])
        batch.drop_column("annotator")
    for sql in OLD_VIEWS.values():
        op.execute(sql)
