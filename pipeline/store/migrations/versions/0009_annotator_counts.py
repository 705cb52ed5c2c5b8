"""Annotator agreement kept as counts, updated with each label load.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

Until 0008, every label load computed Cohen's kappa again from every label of every example two
people labeled, and the `annotator_agreement` view joined all of `feedback` to
`label_resolutions` on each read: both grew with the history. Two tables now hold the counts
(pipeline/store/annotator_counts.py changes them by what each load changes):

- `annotator_label_pairs`: for two annotators, both ways round, and two labels, the examples the
  first gave one and the second the other (kappa's confusion matrix);
- `annotator_tallies`: per annotator, labels, compared, agreed and the latest label's time, which
  the `annotator_agreement` view now shows as they are, with the same columns as before.

The upgrade counts the labels already stored; `annotator_pairs` keeps its figures until the next
label load writes them from the counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNT_PAIRS = """
INSERT INTO annotator_label_pairs (annotator, other, label, other_label, examples)
SELECT f.annotator, g.annotator, f.label, g.label, COUNT(*)
FROM feedback f
JOIN feedback g ON g.example_id = f.example_id AND g.annotator <> f.annotator
GROUP BY f.annotator, g.annotator, f.label, g.label
"""

COUNT_TALLIES = """
INSERT INTO annotator_tallies (annotator, labels, compared, agreed, last_label_at)
SELECT f.annotator, COUNT(*),
       SUM(CASE WHEN r.annotators > 1 THEN 1 ELSE 0 END),
       SUM(CASE WHEN r.annotators > 1 AND f.label = r.label THEN 1 ELSE 0 END),
       MAX(f.received_at)
FROM feedback f
JOIN label_resolutions r ON r.example_id = f.example_id
GROUP BY f.annotator
"""

ANNOTATOR_AGREEMENT = """
CREATE VIEW annotator_agreement AS
SELECT annotator, labels, compared, agreed,
       CAST(agreed AS DOUBLE PRECISION) / NULLIF(compared, 0) AS agreement,
       last_label_at
FROM annotator_tallies
"""

# 0007's view, for the downgrade.
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
JOIN label_resolutions r ON r.example_id = f.example_id
GROUP BY f.annotator
"""


def upgrade() -> None:
    op.create_table(
        "annotator_label_pairs",
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("other", sa.String(200), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("other_label", sa.Text(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("annotator", "other", "label", "other_label", name=op.f("pk_annotator_label_pairs")),
    )
    op.create_table(
        "annotator_tallies",
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("compared", sa.Integer(), nullable=False),
        sa.Column("agreed", sa.Integer(), nullable=False),
        sa.Column("last_label_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("annotator", name=op.f("pk_annotator_tallies")),
    )
    op.execute(COUNT_PAIRS)
    op.execute(COUNT_TALLIES)
    op.execute("DROP VIEW IF EXISTS annotator_agreement")
    op.execute(ANNOTATOR_AGREEMENT)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS annotator_agreement")
    op.execute(OLD_ANNOTATOR_AGREEMENT)
    op.drop_table("annotator_tallies")
    op.drop_table("annotator_label_pairs")
