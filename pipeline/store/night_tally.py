"""A night's quality and conflict rows changed by what some of its rows add, not computed again.

pipeline/store/resolutions.py computes a night's `night_quality` and `night_conflicts` rows from
all its predictions: right once a night, but the server's loader stores a few answers every
second, and a day that holds a million of them would be read again each time. Here the rows of
the examples a load touches are counted before it replaces them and after it wrote them, and the
difference is added to the stored figures: the cost follows the load, not the day
(tests/db/test_db_night_tally.py holds the result to a full recount).

Every function runs on the caller's connection, inside the transaction that writes the rows,
after resolutions.serialize(): a label load that refreshes the same nights waits for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from pipeline.store.row_writing import DELETE_IDS, pages
from pipeline.store.tables import night_conflicts, night_quality

__all__ = ["Tally", "add", "tally"]

# The figures resolutions._QUALITY and _CONFLICTS compute for a whole night, for some of its rows.
_QUALITY = sa.text("""
SELECT COUNT(*), COUNT(r.example_id),
       SUM(CASE WHEN r.example_id IS NOT NULL AND p.prediction = r.label THEN 1 ELSE 0 END),
       SUM(ABS(p.score - r.label_value)), COUNT(ABS(p.score - r.label_value))
FROM predictions p
LEFT JOIN label_resolutions r ON r.example_id = p.example_id AND r.label IS NOT NULL
WHERE p.batch_date = :batch_date AND p.model_version = :model_version AND p.origin = :origin
  AND p.example_id IN :ids
""").bindparams(sa.bindparam("ids", expanding=True), sa.bindparam("batch_date", type_=sa.Date()))

_CONFLICTS = sa.text("""
SELECT p.prediction, COUNT(*), SUM(CASE WHEN r.distinct_labels > 1 THEN 1 ELSE 0 END)
FROM predictions p
JOIN label_resolutions r ON r.example_id = p.example_id
WHERE r.annotators > 1 AND p.batch_date = :batch_date AND p.model_version = :model_version
  AND p.origin = :origin AND p.example_id IN :ids
GROUP BY p.prediction
""").bindparams(sa.bindparam("ids", expanding=True), sa.bindparam("batch_date", type_=sa.Date()))

_COUNTS = ("predicted", "labeled", "correct", "abs_errors")


@dataclass
class Tally:
    """What some rows of one night, model and origin count for in night_quality and night_conflicts."""

    counts: Counter = field(default_factory=Counter)  # predicted, labeled, correct, abs_errors
    abs_error_sum: float | None = None  # None: no row with both a numeric score and label
    conflicts: Counter = field(default_factory=Counter)  # (class, "relabeled" | "conflicting") -> n

    def __sub__(self, other: Tally) -> Tally:
        sums = [value for value in (self.abs_error_sum, other.abs_error_sum) if value is not None]
        return Tally(
            counts=Counter({key: self.counts[key] - other.counts[key] for key in _COUNTS}),
            abs_error_sum=(self.abs_error_sum or 0.0) - (other.abs_error_sum or 0.0) if sums else None,
            conflicts=Counter(
                {key: self.conflicts[key] - other.conflicts[key] for key in {*self.conflicts, *other.conflicts}}
            ),
        )


def tally(connection: sa.Connection, night: date, model: str, origin: str, ids: Sequence[str]) -> Tally:
    """What the stored rows of these examples count for, on that night, model and origin."""
    result = Tally()
    keys = {"batch_date": night, "model_version": model, "origin": origin}
    for page in pages(sorted(set(ids)), DELETE_IDS):
        predicted, labeled, correct, abs_sum, abs_errors = connection.execute(_QUALITY, {**keys, "ids": page}).one()
        result.counts.update(
            {"predicted": predicted, "labeled": labeled, "correct": correct or 0, "abs_errors": abs_errors}
        )
        if abs_sum is not None:
            result.abs_error_sum = (result.abs_error_sum or 0.0) + abs_sum
        for predicted_class, relabeled, conflicting in connection.execute(_CONFLICTS, {**keys, "ids": page}):
            result.conflicts.update(
                {(predicted_class, "relabeled"): relabeled, (predicted_class, "conflicting"): conflicting}
            )
    return result


def add(connection: sa.Connection, night: date, model: str, origin: str, change: Tally) -> None:
    """Add a change (a Tally after a load minus the one before) to the stored figures."""
    _add_quality(connection, night, model, origin, change)
    classes = {predicted_class for predicted_class, _ in change.conflicts}
    for predicted_class in classes:
        relabeled, conflicting = (change.conflicts[predicted_class, key] for key in ("relabeled", "conflicting"))
        if relabeled or conflicting:
            _add_conflicts(connection, night, model, predicted_class, relabeled, conflicting)


def _add_quality(connection: sa.Connection, night: date, model: str, origin: str, change: Tally) -> None:
    key = (night_quality.c.batch_date == night) & (night_quality.c.model_version == model)
    key &= night_quality.c.origin == origin
    stored = connection.execute(sa.select(night_quality).where(key)).first()
    if stored is None:
        row = {name: change.counts[name] for name in _COUNTS} | {"abs_error_sum": change.abs_error_sum}
        if row["predicted"]:
            connection.execute(
                sa.insert(night_quality), {"batch_date": night, "model_version": model, "origin": origin, **row}
            )
        return
    row = {name: getattr(stored, name) + change.counts[name] for name in _COUNTS}
    sums = [value for value in (stored.abs_error_sum, change.abs_error_sum) if value is not None]
    # A night's sum of no errors is NULL in a recount (SUM of nothing), not 0.
    row["abs_error_sum"] = sum(sums) if sums and row["abs_errors"] else None
    if row["predicted"]:
        connection.execute(sa.update(night_quality).where(key).values(**row))
    else:
        connection.execute(sa.delete(night_quality).where(key))


def _add_conflicts(connection, night: date, model: str, predicted_class, relabeled: int, conflicting: int) -> None:
    """night_conflicts has one row per night, model and class (both origins), none for a class
    without relabeled examples: as resolutions' recount leaves it."""
    key = (night_conflicts.c.batch_date == night) & (night_conflicts.c.model_version == model)
    key &= (
        night_conflicts.c.predicted_class.is_(None)
        if predicted_class is None
        else night_conflicts.c.predicted_class == predicted_class
    )
    stored = connection.execute(
        sa.select(night_conflicts.c.relabeled, night_conflicts.c.conflicting).where(key)
    ).first()
    if stored is None:
        connection.execute(
            sa.insert(night_conflicts),
            {
                "batch_date": night,
                "model_version": model,
                "predicted_class": predicted_class,
                "relabeled": relabeled,
                "conflicting": conflicting,
            },
        )
    elif stored.relabeled + relabeled > 0:
        values = {"relabeled": stored.relabeled + relabeled, "conflicting": stored.conflicting + conflicting}
        connection.execute(sa.update(night_conflicts).where(key).values(**values))
    else:
        connection.execute(sa.delete(night_conflicts).where(key))
