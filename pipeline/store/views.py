"""Typed descriptions of the analyst views, so that queries get typed results (dates on SQLite
too). Their SQL is in the migration that creates or last changed each; they live in their own
MetaData, so that create_all, Alembic's autogenerate and the schema comparison never treat them
as tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.common.columns import ANNOTATOR_LENGTH, EXAMPLE_ID_LENGTH
from pipeline.store.tables import UtcDateTime

view_metadata = sa.MetaData()

drift_alerts_view = sa.Table(
    "drift_alerts",
    view_metadata,
    sa.Column("batch_date", sa.Date()),
    sa.Column("model_version", sa.String(64)),
    sa.Column("feature", sa.String(200)),
    sa.Column("method", sa.String(16)),
    sa.Column("score", sa.Float()),
    sa.Column("threshold", sa.Float()),
    # Migration 0008: the acknowledgement that keeps this alert from failing its night, if any.
    sa.Column("acknowledged_by", sa.Integer()),
    sa.Column("acknowledged", sa.Boolean()),
)

# Per night and model with a labeled prediction: online and batch rows together.
prediction_quality_daily_view = sa.Table(
    "prediction_quality_daily",
    view_metadata,
    sa.Column("batch_date", sa.Date()),
    sa.Column("model_version", sa.String(64)),
    sa.Column("predicted", sa.Integer()),
    sa.Column("labeled", sa.Integer()),
    sa.Column("accuracy", sa.Float()),  # classification only
    sa.Column("mae", sa.Float()),  # regression only
)

# The same, apart by origin (migration 0011): a night's files ('batch') and `overnight serve` ('online').
prediction_quality_by_origin_view = sa.Table(
    "prediction_quality_by_origin",
    view_metadata,
    sa.Column("batch_date", sa.Date()),
    sa.Column("model_version", sa.String(64)),
    sa.Column("origin", sa.String(8)),
    sa.Column("predicted", sa.Integer()),
    sa.Column("labeled", sa.Integer()),
    sa.Column("accuracy", sa.Float()),
    sa.Column("mae", sa.Float()),
)

resolved_labels_view = sa.Table(
    "resolved_labels",
    view_metadata,
    sa.Column("example_id", sa.String(EXAMPLE_ID_LENGTH)),
    sa.Column("label", sa.Text()),  # NULL: a tie no tie_order breaks
    sa.Column("label_value", sa.Float()),
    sa.Column("annotators", sa.Integer()),
    sa.Column("agreeing", sa.Integer()),  # annotators who gave the resolved label
    sa.Column("distinct_labels", sa.Integer()),
    sa.Column("status", sa.String(16)),  # unanimous, majority, tie_broken, unresolved
    sa.Column("received_at", UtcDateTime()),
)

annotator_agreement_view = sa.Table(
    "annotator_agreement",
    view_metadata,
    sa.Column("annotator", sa.String(ANNOTATOR_LENGTH)),
    sa.Column("labels", sa.Integer()),
    sa.Column("compared", sa.Integer()),  # labels on examples someone else labeled too
    sa.Column("agreed", sa.Integer()),
    sa.Column("agreement", sa.Float()),
    sa.Column("last_label_at", UtcDateTime()),
)

label_conflicts_daily_view = sa.Table(
    "label_conflicts_daily",
    view_metadata,
    sa.Column("batch_date", sa.Date()),
    sa.Column("model_version", sa.String(64)),
    sa.Column("predicted_class", sa.Text()),
    sa.Column("relabeled", sa.Integer()),  # examples two or more annotators labeled
    sa.Column("conflicting", sa.Integer()),
    sa.Column("conflict_share", sa.Float()),
)

labeling_queue_view = sa.Table(
    "labeling_queue",
    view_metadata,
    sa.Column("batch_date", sa.Date()),
    sa.Column("example_id", sa.String(EXAMPLE_ID_LENGTH)),
    sa.Column("model_version", sa.String(64)),
    sa.Column("prediction", sa.Text()),
    sa.Column("score", sa.Float()),
    sa.Column("probabilities", sa.Text()),
)
