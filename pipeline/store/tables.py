"""Table definitions (SQLAlchemy Core): the run ledger, the model registry, the nightly batches
and the monitoring tables. The analyst views are described in pipeline/store/views.py.

This module describes the schema as the code expects it; the Alembic migrations in
``migrations/versions`` create it. A test compares the two on both backends, so a change here
needs a new migration.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pipeline.common.columns import ANNOTATOR_LENGTH, EXAMPLE_ID_LENGTH
from pipeline.common.metrics import NAME_LENGTH, SLICE_LENGTH

# Deterministic constraint names: Alembic's batch mode on SQLite can only alter or drop a
# constraint it can name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("running", "succeeded", "failed", "abandoned")

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(sa.types.TypeDecorator):
    """A timezone-aware timestamp that always reads back as an aware UTC datetime.

    PostgreSQL stores ``timestamptz`` and returns it in the session's time zone; SQLite keeps
    no zone at all. Storing UTC and attaching UTC on the way out makes both backends agree.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> sa.types.TypeEngine:
    # JSONB on PostgreSQL so analysts get its operators and indexing; JSON text elsewhere.
    # none_as_null: Python None is SQL NULL, not the JSON literal 'null'.
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("params", _json()),
    sa.Column("version", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("git_commit", sa.String(40), nullable=True),
    sa.Column("git_dirty", sa.Boolean(), nullable=True),
    sa.Column("data_version", sa.String(64), nullable=True),
    sa.Column("hardware", _json()),
    sa.Column("packages", _json()),
    sa.Column("output_path", sa.Text()),
    sa.Column("rows_in", sa.Integer(), nullable=True),
    sa.Column("rows_rejected", sa.Integer(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer()),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("duration_s", sa.Float(), nullable=True),
    # Cost accounting (migration 0003); NULL for runs recorded before it, or not measured.
    sa.Column("cpu_s", sa.Float(), nullable=True),  # user + system, the process and its children
    sa.Column("peak_memory_mb", sa.Float(), nullable=True),  # the process's peak resident memory
    sa.Column("gpu_name", sa.String(200), nullable=True),  # first visible GPU; NULL without one
    sa.Column("gpu_s", sa.Float(), nullable=True),  # 0 when a GPU was present but unused
    sa.Column("cost", sa.Float(), nullable=True),  # estimated, in the configured prices' currency
    # Written by a running run's process (migration 0012): another host settles it once stale.
    sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'abandoned')", name="status"),
    sa.Index("ix_runs_task_started_at", "task", "started_at"),
    sa.Index("ix_runs_status", "status"),
)

run_metrics = sa.Table(
    "run_metrics",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    sa.Column("split", sa.String(16), nullable=False),
    # "" means the whole split; NOT NULL so that (run, split, slice, name) compares with "=".
    sa.Column("slice", sa.String(SLICE_LENGTH), nullable=False, default="", server_default=""),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False),
    # NaN and infinities are stored as NULL: SQLite and most BI tools cannot handle them.
    sa.Column("value", sa.Float(), nullable=True),
    # NULL for a final figure, the epoch number for training history.
    sa.Column("epoch", sa.Integer(), nullable=True),
    # "" for the run's own model; else the baseline the evaluation scored beside it (migration 0005).
    sa.Column("baseline", sa.String(NAME_LENGTH), nullable=False, default="", server_default=""),
    sa.CheckConstraint("split IN ('train', 'validation', 'test', 'batch')", name="split"),
    sa.Index("ix_run_metrics_run_id", "run_id"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("data_version", sa.String(64), primary_key=True),
    sa.Column("path", sa.Text()),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("rows", sa.Integer()),
    sa.Column("columns", _json()),  # list of column names, in file order
    sa.Column("schema", _json()),  # column name -> kind (numeric, categorical, text, image)
    sa.Column("created_at", UtcDateTime()),
)

# --- Registry and nightly batches (migration 0002) -------------------------------------------

MODEL_STAGES = ("candidate", "production", "archived")
MODEL_EVENTS = ("register", "promote", "rollback", "archive")
MODEL_TASKS = ("classification", "regression")
BATCH_STATUSES = ("empty", "loaded", "partial", "missing")
# The drift table's methods (each at most 16 characters: drift.method); class_share is per
# predicted class, on feature "(prediction):<class>".
DRIFT_METHODS = (
    "psi",
    "ks",
    "js",
    "wasserstein",
    "missing",
    "out_of_range",
    "unseen",
    "constant",
    "duplicate_id",
    "class_share",
    "per_night",  # [MonitorDrift] policies: pipeline/stages/policies.py
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    # The training output version (the content-addressed folder name of the model).
    sa.Column("version", sa.String(64), primary_key=True),
    # The TrainModel run that made it; a pruned run leaves the model registered.
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="SET NULL"), nullable=True),
    sa.Column("path", sa.Text()),  # the model directory
    sa.Column("sha256", sa.String(64)),  # of model.keras
    # {file name: sha256} of every file scoring reads from the folder (migration 0013); NULL before.
    sa.Column("files", _json()),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("task", sa.String(16)),  # classification or regression
    sa.Column("data_version", sa.String(64)),
    sa.Column("evaluation_path", sa.Text()),
    sa.Column("headline", sa.Float()),
    sa.Column("metrics", _json()),
    sa.Column("created_at", UtcDateTime()),
    sa.CheckConstraint("stage IN ('candidate', 'production', 'archived')", name="stage"),
    # At most one production model, whatever a client does; pipeline.store.registry makes it exactly
    # one (after the first promotion) inside its locked transactions.
    sa.Index(
        "ux_model_versions_production",
        "stage",
        unique=True,
        sqlite_where=sa.text("stage = 'production'"),
        postgresql_where=sa.text("stage = 'production'"),
    ),
)

model_events = sa.Table(
    "model_events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    # No cascade: the audit trail outlives nothing it describes.
    sa.Column("version", sa.String(64), sa.ForeignKey("model_versions.version"), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text()),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("event IN ('register', 'promote', 'rollback', 'archive')", name="event"),
    sa.Index("ix_model_events_version", "version"),
    sa.Index("ix_model_events_at", "at"),
)

# The completion marker of a nightly batch: written in the same transaction as its predictions.
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("batch_date", sa.Date(), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("rows_in", sa.Integer()),
    sa.Column("rows_rejected", sa.Integer()),
    sa.Column("rows_scored", sa.Integer()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("loaded_at", UtcDateTime()),
    sa.Column("run_id", sa.String(32), nullable=True),  # the LogPredictions run
    sa.CheckConstraint("status IN ('empty', 'loaded', 'partial', 'missing')", name="status"),
)

BATCH, ONLINE = "batch", "online"  # predictions.origin: a night's row, or one `overnight serve` answered

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("batch_date", sa.Date(), primary_key=True),
    sa.Column("example_id", sa.String(EXAMPLE_ID_LENGTH), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("prediction", sa.Text()),  # the class label, or the value for regression
    sa.Column("score", sa.Float()),  # top-class probability, or the predicted value
    sa.Column("probabilities", sa.Text()),  # JSON text {"class": p, ...}; NULL for regression
    # Migration 0010: 'batch' for a night's rows, 'online' for `overnight serve`'s answers (their
    # batch_date is the UTC day of the request); a night's reload replaces its batch rows only.
    sa.Column("origin", sa.String(8), primary_key=True, server_default=BATCH),
    sa.Column("requested_at", UtcDateTime(), nullable=True),  # online rows: when the request came
    # Migration 0011: online rows, the row the request sent (JSON text, an image as its kept file),
    # for the night's drift check; NULL for a night's rows (their inputs are the night's files).
    sa.Column("inputs", sa.Text(), nullable=True),
    sa.CheckConstraint("origin IN ('batch', 'online')", name="origin"),
    sa.Index("ix_predictions_example_id", "example_id"),
)

# Every label, one row per example and annotator (migration 0006); resolved_labels picks one.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("example_id", sa.String(EXAMPLE_ID_LENGTH), primary_key=True),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Column("label_value", sa.Float(), nullable=True),  # the label as a number, when it is one
    sa.Column("received_at", UtcDateTime()),
    sa.Column("source", sa.Text()),  # the file the label came in
    sa.Column("annotator", sa.String(ANNOTATOR_LENGTH), primary_key=True),
    sa.Index("ix_feedback_annotator", "annotator"),
)

# The annotators seen, with their place in `[labeling] tie_order` (NULL: not in it).
annotators = sa.Table(
    "annotators",
    metadata,
    sa.Column("annotator", sa.String(ANNOTATOR_LENGTH), primary_key=True),
    sa.Column("tie_rank", sa.Integer(), nullable=True),
    sa.Column("updated_at", UtcDateTime()),
)

# Cohen's kappa of two annotators over the examples both labeled, both ways round.
annotator_pairs = sa.Table(
    "annotator_pairs",
    metadata,
    sa.Column("annotator", sa.String(ANNOTATOR_LENGTH), primary_key=True),
    sa.Column("other", sa.String(ANNOTATOR_LENGTH), primary_key=True),
    sa.Column("overlap", sa.Integer(), nullable=False),  # examples both labeled
    sa.Column("agreement", sa.Float()),  # share of those with the same label
    sa.Column("kappa", sa.Float()),  # NULL where it is undefined (one class only between them)
    sa.Column("updated_at", UtcDateTime()),
)

# --- Label resolutions and per-night quality (migration 0007) --------------------------------
# What the views of 0006 computed from every label on every read, kept up to date by
# pipeline/store/resolutions.py in the transactions that write labels and predictions.

# One resolved label per labeled example: the resolved_labels view reads it as it is.
label_resolutions = sa.Table(
    "label_resolutions",
    metadata,
    sa.Column("example_id", sa.String(EXAMPLE_ID_LENGTH), primary_key=True),
    sa.Column("label", sa.Text(), nullable=True),  # NULL: a tie no tie_order breaks
    sa.Column("label_value", sa.Float(), nullable=True),
    sa.Column("annotators", sa.Integer(), nullable=False),
    sa.Column("agreeing", sa.Integer(), nullable=False),  # annotators who gave the resolved label
    sa.Column("distinct_labels", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # unanimous, majority, tie_broken, unresolved
    sa.Column("received_at", UtcDateTime()),  # the newest of the example's labels
    sa.Index("ix_label_resolutions_distinct_labels", "distinct_labels"),
    sa.Index("ix_label_resolutions_annotators", "annotators"),
)

# Per night, model and origin (migration 0011): what prediction_quality_daily (origins summed) and
# prediction_quality_by_origin show, as counts and sums.
night_quality = sa.Table(
    "night_quality",
    metadata,
    sa.Column("batch_date", sa.Date(), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("origin", sa.String(8), primary_key=True, server_default=BATCH),
    sa.Column("predicted", sa.Integer(), nullable=False),
    sa.Column("labeled", sa.Integer(), nullable=False),  # predictions with a resolved label
    sa.Column("correct", sa.Integer(), nullable=False),  # of those, predicted as labeled
    sa.Column("abs_error_sum", sa.Float(), nullable=True),  # |score - label value|, where both are numbers
    sa.Column("abs_errors", sa.Integer(), nullable=False),
)

# Per night, model and predicted class with examples two or more annotators labeled: what
# label_conflicts_daily shows. A surrogate key, since the predicted class may be NULL.
night_conflicts = sa.Table(
    "night_conflicts",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("batch_date", sa.Date(), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("predicted_class", sa.Text(), nullable=True),
    sa.Column("relabeled", sa.Integer(), nullable=False),
    sa.Column("conflicting", sa.Integer(), nullable=False),
    sa.Index("ix_night_conflicts_batch_date_model_version", "batch_date", "model_version"),
)

feature_stats = sa.Table(
    "feature_stats",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("batch_date", sa.Date()),
    sa.Column("model_version", sa.String(64)),
    sa.Column("feature", sa.String(200)),
    sa.Column("statistic", sa.String(32)),
    sa.Column("batch_value", sa.Float()),
    sa.Column("reference_value", sa.Float()),
    sa.Index("ix_feature_stats_batch_date_model_version", "batch_date", "model_version"),
)

drift = sa.Table(
    "drift",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("batch_date", sa.Date()),
    sa.Column("model_version", sa.String(64)),
    sa.Column("feature", sa.String(200)),
    sa.Column("method", sa.String(16)),  # psi, ks, js
    sa.Column("score", sa.Float()),
    sa.Column("threshold", sa.Float()),
    sa.Column("alert", sa.Boolean()),
    sa.Index("ix_drift_batch_date_model_version", "batch_date", "model_version"),
)

# --- Drift acknowledgements (migration 0008) ----------------------------------------------------

# Append-only, like model_events: `overnight drift ack` adds an `ack` row per (feature, method),
# `unack` an `unack` row naming (`ends`) the `ack` row it ends. pipeline/store/acknowledgements.py.
drift_acknowledgements = sa.Table(
    "drift_acknowledgements",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("event", sa.String(8), nullable=False),
    sa.Column("feature", sa.String(200), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("score", sa.Float(), nullable=True),  # the alert's score when acknowledged
    sa.Column("ceiling", sa.Float(), nullable=True),  # above it the same alert fails nights again
    sa.Column("batch_date", sa.Date(), nullable=True),  # the night whose alert was acknowledged
    sa.Column("since", sa.Date(), nullable=True),  # the first night covered
    sa.Column("until", sa.Date(), nullable=True),  # the last night covered; NULL: until ended
    sa.Column("ends", sa.Integer(), sa.ForeignKey("drift_acknowledgements.id"), nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("event IN ('ack', 'unack')", name="event"),
    sa.Index("ix_drift_acknowledgements_feature", "feature", "method"),
    sa.Index("ix_drift_acknowledgements_ends", "ends"),
)

# --- Annotator counts (migration 0009) ---------------------------------------------------------
# Agreement kept as counts, changed by the difference each label load makes to the examples it
# touches (pipeline/store/annotator_counts.py): kappa and the annotator_agreement view read them
# by key instead of every label shared.

# For two annotators (both ways round) and two labels: the examples the first gave `label` and the
# second `other_label`. Cohen's kappa of every pair is computed from these (annotator_pairs).
annotator_label_pairs = sa.Table(
    "annotator_label_pairs",
    metadata,
    sa.Column("annotator", sa.String(ANNOTATOR_LENGTH), primary_key=True),
    sa.Column("other", sa.String(ANNOTATOR_LENGTH), primary_key=True),
    sa.Column("label", sa.Text(), primary_key=True),
    sa.Column("other_label", sa.Text(), primary_key=True),
    sa.Column("examples", sa.Integer(), nullable=False),
)

# Per annotator, what the annotator_agreement view shows.
annotator_tallies = sa.Table(
    "annotator_tallies",
    metadata,
    sa.Column("annotator", sa.String(ANNOTATOR_LENGTH), primary_key=True),
    sa.Column("labels", sa.Integer(), nullable=False),  # labels given (one per example)
    sa.Column("compared", sa.Integer(), nullable=False),  # of those, on examples others labeled too
    sa.Column("agreed", sa.Integer(), nullable=False),  # of those, the resolved label
    sa.Column("last_label_at", UtcDateTime()),
)

# --- Output markers (migration 0004) ---------------------------------------------------------

# A task whose product includes rows is complete in a database only when that database holds
# its marker, written in the transaction that writes the rows (as Luigi's CopyToTable does).
output_markers = sa.Table(
    "output_markers",
    metadata,
    sa.Column("task", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="SET NULL"), nullable=True),
    sa.Column("marked_at", UtcDateTime(), nullable=False),
)
