"""Late labels in SQL: every label kept, one row per example and annotator, and what is read from
them: the resolved labels training may use, the agreement between annotators, re-check candidates.

The rule that resolves several labels into one (migration 0006, applied since 0007 when labels
load, pipeline/store/resolutions.py; the `resolved_labels` view shows it): the label most
annotators gave; a tie goes to the tied label of the annotator who comes first in `[labeling]
tie_order`, and stays unresolved otherwise. Quality (prediction_quality_daily) counts resolved
labels; training (include_feedback) takes only examples whose annotators all agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipeline.common.clock import utc_now
from pipeline.common.columns import ANNOTATOR, ANNOTATOR_LENGTH, FEEDBACK_COLUMNS
from pipeline.common.jsonvalues import finite_or_none
from pipeline.store import annotator_counts, markers, resolutions
from pipeline.store.markers import Marker
from pipeline.store.row_writing import DELETE_IDS, INSERT_ROWS, pages
from pipeline.store.tables import annotator_pairs, annotators, feedback, predictions
from pipeline.store.transactions import locked_transaction
from pipeline.store.values import check_ids, text_column
from pipeline.store.views import annotator_agreement_view, resolved_labels_view

__all__ = ["AgreedLabels", "agreed_labels", "agreement_rows", "load_feedback", "recheck_candidates"]

logger = logging.getLogger(__name__)

UNKNOWN_ANNOTATOR = "unknown"  # a label from a file without an annotator column, by default
_FEEDBACK_LOCK_KEY = 0x6F76_6E69_6662_6B  # "ovnifbk": one writer of labels at a time


def load_feedback(
    engine: sa.Engine,
    labels: pd.DataFrame,
    *,
    source: str,
    marker: Marker | None = None,
    tie_order: Sequence[str] | None = None,
    pair_agreement: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> int:
    """Store late labels; an annotator's new label for an example replaces their old one only.

    In one transaction: the given (example_id, annotator) rows are replaced, the annotators and
    their tie-break ranks are written, the examples' resolved labels and the quality figures of
    the nights that scored them are computed again (every example's, when a changed rank is
    that of an annotator with labels: it may decide other ties), the annotators' agreement counts
    change by what these examples' labels changed, and, given `pair_agreement`, every pair's
    agreement and kappa is computed again from those counts. ``label_value`` is the label as a number when it is one. An
    example given twice by one annotator keeps its last label, with a warning.

    Args:
        labels: columns example_id and label; annotator (else every label is UNKNOWN_ANNOTATOR's)
            and source (the file of each label; else `source`) when known.
        source: where the labels came from, for rows without their own.
        marker: written in the same transaction: the labels of that output are then complete here.
        tie_order: annotators in the order that breaks a tie (`[labeling] tie_order`), written
            as the ranks; None leaves the ranks stored as they are.
        pair_agreement: pair cells (annotator_label_pairs' rows) -> annotator_pairs rows
            (pipeline.stages.agreement.pair_agreement, as IngestFeedback passes it); None leaves
            annotator_pairs as it is.

    Returns:
        The number of labels stored.

    Raises:
        ValueError: a column is missing, or an id, label or annotator is missing or too long.
    """
    frame = _label_frame(labels, source)
    received_at = utc_now()
    values = pd.to_numeric(frame["label"], errors="coerce").astype("float64")
    rows = [
        {
            "example_id": example_id,
            "annotator": annotator,
            "label": label,
            "label_value": finite_or_none(value),
            "received_at": received_at,
            "source": file,
        }
        for example_id, annotator, label, file, value in zip(
            *(frame[c].tolist() for c in ("example_id", ANNOTATOR, "label", "source")), values.tolist()
        )
    ]
    with locked_transaction(engine, _FEEDBACK_LOCK_KEY) as connection:
        before = annotator_counts.read(connection, frame["example_id"])
        for annotator, own in frame.groupby(ANNOTATOR, sort=False):
            for page in pages(own["example_id"].tolist(), DELETE_IDS):
                connection.execute(
                    sa.delete(feedback).where(feedback.c.annotator == annotator, feedback.c.example_id.in_(page))
                )
        for page in pages(rows, INSERT_ROWS):
            connection.execute(sa.insert(feedback), page)
        changed = _write_annotators(connection, set(frame[ANNOTATOR]), tie_order)
        every_label = bool(changed) and _have_labels(connection, changed)
        if every_label:
            resolutions.rebuild(connection)
        else:
            resolutions.refresh_examples(connection, frame["example_id"])
        after = annotator_counts.read(connection, frame["example_id"])
        annotator_counts.apply(connection, before, after, tallies=not every_label)
        if every_label:  # every label resolved again: every annotator's agreement may differ
            annotator_counts.rebuild(connection, pairs=False)
        if pair_agreement is not None:
            annotator_counts.write_pairs(connection, pair_agreement)
        if marker is not None:
            markers.write(connection, marker)
    logger.info("stored %d label(s) from %s", len(rows), source)
    return len(rows)


def _label_frame(labels: pd.DataFrame, source: str) -> pd.DataFrame:
    """example_id, annotator, label, source as text, checked, one row per example and annotator."""
    missing = [column for column in FEEDBACK_COLUMNS if column not in labels.columns]
    if missing:
        raise ValueError(f"feedback: missing columns {', '.join(missing)}")
    ids = text_column(labels["example_id"])
    check_ids(ids, "feedback")
    label_text = text_column(labels["label"])
    if label_text.isna().any():
        raise ValueError(
            f"{int(label_text.isna().sum())} feedback row(s) have no label (first: {ids[label_text.isna()].iloc[0]!r})"
        )
    who = (
        text_column(labels[ANNOTATOR])
        if ANNOTATOR in labels.columns
        else pd.Series(UNKNOWN_ANNOTATOR, index=labels.index)
    )
    lengths = who.str.len()
    if who.isna().any() or (lengths < 1).any() or (lengths > ANNOTATOR_LENGTH).any():
        raise ValueError(f"feedback: every label needs an annotator of 1 to {ANNOTATOR_LENGTH} characters")
    files = text_column(labels["source"]).fillna(source) if "source" in labels.columns else source
    frame = pd.DataFrame({"example_id": ids, ANNOTATOR: who, "label": label_text, "source": files})
    repeated = frame.duplicated(["example_id", ANNOTATOR], keep="last")
    if repeated.any():
        logger.warning(
            "feedback from %s: %d example(s) labeled more than once by one annotator; keeping the last label",
            source,
            int(repeated.sum()),
        )
    return frame[~repeated]


def _write_annotators(connection: sa.Connection, seen: set[str], tie_order: Sequence[str] | None) -> Sequence[str]:
    """Every annotator seen gets a row; the tie-break ranks are the given order's, now.

    Returns:
        The annotators whose rank changed (none when `tie_order` is None or the same as stored).
    """
    stored = {row[0]: row[1] for row in connection.execute(sa.select(annotators.c.annotator, annotators.c.tie_rank))}
    now = utc_now()
    new = sorted((seen | set(tie_order or ())) - set(stored))
    if new:
        connection.execute(sa.insert(annotators), [{"annotator": name, "updated_at": now} for name in new])
    if tie_order is None:
        return []
    ranks = {name: rank for rank, name in enumerate(dict.fromkeys(tie_order))}
    changed = resolutions.ranks_changed({name: rank for name, rank in stored.items() if rank is not None}, ranks)
    if not changed:
        return []  # IngestFeedback passes the same order every night: nothing to write
    connection.execute(sa.update(annotators).where(annotators.c.tie_rank.is_not(None)).values(tie_rank=None))
    for name, rank in ranks.items():
        connection.execute(
            sa.update(annotators).where(annotators.c.annotator == name).values(tie_rank=rank, updated_at=now)
        )
    return changed


def _have_labels(connection: sa.Connection, names: Sequence[str]) -> bool:
    """Whether any of these annotators labeled anything: only then can their rank decide a tie."""
    query = sa.select(feedback.c.annotator).where(feedback.c.annotator.in_(list(names))).limit(1)
    return connection.execute(query).first() is not None


@dataclass(frozen=True)
class AgreedLabels:
    """The labels training may use, and how many examples were left out for conflicting."""

    labels: pd.DataFrame  # example_id, label: examples whose annotators all gave this label
    conflicting: int  # labeled examples whose annotators gave different labels


def agreed_labels(engine: sa.Engine) -> AgreedLabels:
    """Examples whose every annotator gave the same label, for include_feedback."""
    view = resolved_labels_view
    query = sa.select(view.c.example_id, view.c.label, view.c.distinct_labels).order_by(view.c.example_id)
    with engine.connect() as connection:
        resolved = pd.DataFrame(connection.execute(query).all(), columns=["example_id", "label", "distinct_labels"])
    agreed = resolved["distinct_labels"] == 1
    return AgreedLabels(resolved.loc[agreed, ["example_id", "label"]].reset_index(drop=True), int((~agreed).sum()))


def agreement_rows(engine: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the annotator_agreement view: annotator, labels, compared, agreed, agreement; the
    annotator_pairs table: annotator, other, overlap, agreement, kappa), by annotator."""
    view = annotator_agreement_view
    per_annotator = sa.select(view.c.annotator, view.c.labels, view.c.compared, view.c.agreed, view.c.agreement)
    pairs = sa.select(
        annotator_pairs.c.annotator,
        annotator_pairs.c.other,
        annotator_pairs.c.overlap,
        annotator_pairs.c.agreement,
        annotator_pairs.c.kappa,
    )
    with engine.connect() as connection:
        return (
            _frame(connection, per_annotator.order_by(view.c.annotator)),
            _frame(connection, pairs.order_by(annotator_pairs.c.annotator, annotator_pairs.c.other)),
        )


def _frame(connection: sa.Connection, query) -> pd.DataFrame:
    result = connection.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def recheck_candidates(engine: sa.Engine, annotator: str, up_to: date) -> pd.DataFrame:
    """Labeled examples `annotator` has not labeled, at their newest prediction up to the night
    `up_to`: what a quality-control re-check may send them (the labeling queue's columns without
    probabilities), sorted by id in Python, so that a seed picks the same rows on every backend."""
    labeled = sa.select(feedback.c.example_id).distinct()
    own = sa.select(feedback.c.example_id).where(feedback.c.annotator == annotator)
    newest = (
        sa.select(predictions.c.example_id, sa.func.max(predictions.c.batch_date).label("batch_date"))
        .where(
            predictions.c.example_id.in_(labeled),
            predictions.c.example_id.not_in(own),
            predictions.c.batch_date <= up_to,
        )
        .group_by(predictions.c.example_id)
        .subquery()
    )
    query = (
        sa.select(
            predictions.c.batch_date,
            predictions.c.example_id,
            predictions.c.model_version,
            predictions.c.prediction,
            predictions.c.score,
        )
        .join(
            newest,
            sa.and_(newest.c.example_id == predictions.c.example_id, newest.c.batch_date == predictions.c.batch_date),
        )
        .order_by(predictions.c.example_id, predictions.c.model_version)
    )
    with engine.connect() as connection:
        rows = pd.DataFrame(
            connection.execute(query).all(),
            columns=["batch_date", "example_id", "model_version", "prediction", "score"],
        )
    rows = rows.sort_values(["example_id", "model_version"], kind="stable")
    return rows.drop_duplicates("example_id", keep="last").reset_index(drop=True)
