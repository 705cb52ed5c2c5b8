"""Agreement between annotators kept as counts (migration 0009), so that a label load costs what
it loads, not every label two people ever shared (benchmarks/bench_history.py).

Two tables hold what kappa and the `annotator_agreement` view need:

- `annotator_label_pairs`: for two annotators, both ways round, and two labels, the examples the
  first gave one label and the second the other (the confusion matrix kappa comes from);
- `annotator_tallies`: per annotator, labels given, compared (on examples several people
  labeled) and agreed (the resolved label), and the time of their latest label.

A label load reads both figures for the examples it touches before it writes and again after it
has written and resolved them (:func:`read`), and adds the difference (:func:`apply`): every
example's share is taken out as it was and put back as it is. Everything runs on the caller's
connection, inside the transaction that writes the labels. Rows written to `feedback` by hand are
not counted until :func:`rebuild` runs, as with pipeline/store/resolutions.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from pipeline.common.clock import utc_now
from pipeline.common.jsonvalues import finite_or_none
from pipeline.store.row_writing import DELETE_IDS, INSERT_ROWS, pages
from pipeline.store.tables import annotator_label_pairs, annotator_pairs, annotator_tallies, feedback, label_resolutions

__all__ = ["Counts", "apply", "read", "rebuild", "write_pairs"]

PairCell = tuple[str, str, str, str]  # (annotator, other, label, other_label)
TALLIES = ("labels", "compared", "agreed")

_first, _second = feedback.alias("f"), feedback.alias("g")
_PAIR_CELLS = (
    sa.select(_first.c.annotator, _second.c.annotator, _first.c.label, _second.c.label, sa.func.count())
    .join(_second, sa.and_(_second.c.example_id == _first.c.example_id, _second.c.annotator != _first.c.annotator))
    .group_by(_first.c.annotator, _second.c.annotator, _first.c.label, _second.c.label)
)
_shared = label_resolutions.c.annotators > 1
_TALLIES = (
    sa.select(
        feedback.c.annotator,
        sa.func.count(),
        sa.func.sum(sa.case((_shared, 1), else_=0)),
        sa.func.sum(sa.case((sa.and_(_shared, feedback.c.label == label_resolutions.c.label), 1), else_=0)),
        sa.func.max(feedback.c.received_at),
    )
    .join(label_resolutions, label_resolutions.c.example_id == feedback.c.example_id)
    .group_by(feedback.c.annotator)
)


@dataclass
class Counts:
    """Both figures over some examples: pair cells, and (labels, compared, agreed) per annotator."""

    pairs: Counter[PairCell] = field(default_factory=Counter)
    tallies: dict[str, Counter[str]] = field(default_factory=dict)
    last_label_at: dict[str, datetime] = field(default_factory=dict)


def read(connection: sa.Connection, example_ids: Iterable[str]) -> Counts:
    """The counts these examples' labels make, as stored now (their resolutions included)."""
    counts = Counts()
    for page in pages(sorted(set(example_ids)), DELETE_IDS):
        for first, second, label, other_label, examples in connection.execute(
            _PAIR_CELLS.where(_first.c.example_id.in_(page))
        ):
            counts.pairs[first, second, label, other_label] += examples
        for annotator, labels, compared, agreed, last in connection.execute(
            _TALLIES.where(feedback.c.example_id.in_(page))
        ):
            own = counts.tallies.setdefault(annotator, Counter())
            own.update(labels=labels, compared=compared or 0, agreed=agreed or 0)
            if last is not None:
                counts.last_label_at[annotator] = max(last, counts.last_label_at.get(annotator, last))
    return counts


def apply(connection: sa.Connection, before: Counts, after: Counts, *, tallies: bool = True) -> None:
    """Add what changed between two readings of the same examples to the stored counts.

    Args:
        tallies: False leaves `annotator_tallies` alone (the caller rebuilds it, as when a change
            of tie-break ranks resolved every label again).
    """
    _add_pairs(connection, _difference(before.pairs, after.pairs))
    if tallies:
        changes = {
            name: _difference(before.tallies.get(name, Counter()), after.tallies.get(name, Counter()))
            for name in set(before.tallies) | set(after.tallies)
        }
        _add_tallies(connection, changes, after.last_label_at)  # unchanged figures too: a newer label


def _difference(before: Counter, after: Counter) -> dict:
    """after - before, keeping negative and dropping zero changes (Counter's `-` drops negatives)."""
    return {key: after[key] - before[key] for key in set(before) | set(after) if after[key] != before[key]}


def _add_pairs(connection: sa.Connection, changes: dict[PairCell, int]) -> None:
    if not changes:
        return
    table = annotator_label_pairs
    names = sorted({cell[0] for cell in changes})
    stored = Counter(
        {tuple(row[:4]): row[4] for row in connection.execute(sa.select(table).where(table.c.annotator.in_(names)))}
    )
    for cell, change in changes.items():
        stored[cell] += change
    connection.execute(sa.delete(table).where(table.c.annotator.in_(names)))
    rows = [
        {"annotator": a, "other": b, "label": la, "other_label": lb, "examples": n}
        for (a, b, la, lb), n in sorted(stored.items())
        if n > 0
    ]
    for page in pages(rows, INSERT_ROWS):
        connection.execute(sa.insert(table), page)


def _add_tallies(connection: sa.Connection, changes: dict[str, dict], last_label_at: dict[str, datetime]) -> None:
    if not changes:
        return
    table = annotator_tallies
    names = sorted(changes)
    stored = {row.annotator: row for row in connection.execute(sa.select(table).where(table.c.annotator.in_(names)))}
    rows = []
    for name in names:
        old = stored.get(name)
        figures = {key: (getattr(old, key) if old else 0) + changes[name].get(key, 0) for key in TALLIES}
        latest = [time for time in (old.last_label_at if old else None, last_label_at.get(name)) if time is not None]
        if figures["labels"] > 0:
            rows.append({"annotator": name, **figures, "last_label_at": max(latest, default=None)})
    connection.execute(sa.delete(table).where(table.c.annotator.in_(names)))
    if rows:
        connection.execute(sa.insert(table), rows)


def rebuild(connection: sa.Connection, *, pairs: bool = True) -> None:
    """Count every label again (after a change of tie-break ranks that resolved every label
    again, or labels written by hand): history-sized.

    Args:
        pairs: False counts only `annotator_tallies` (pair cells do not depend on resolutions).
    """
    counts = Counts()
    tables = (annotator_tallies, annotator_label_pairs) if pairs else (annotator_tallies,)
    for table in tables:
        connection.execute(sa.delete(table))
    for annotator, labels, compared, agreed, last in connection.execute(_TALLIES):
        counts.tallies[annotator] = Counter(labels=labels, compared=compared or 0, agreed=agreed or 0)
        if last is not None:
            counts.last_label_at[annotator] = last
    if pairs:
        counts.pairs.update({tuple(row[:4]): row[4] for row in connection.execute(_PAIR_CELLS)})
    apply(connection, Counts(), counts)


def write_pairs(connection: sa.Connection, pair_agreement: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """annotator_pairs from the stored pair cells: overlap, agreement and kappa of every pair.

    The read is the number of (annotator, other, label, other label) cells in use, whatever the
    number of examples labeled."""
    table = annotator_label_pairs
    cells = [tuple(row) for row in connection.execute(sa.select(table))]  # plain tuples: pandas is slow on Rows
    figures = pair_agreement(pd.DataFrame(cells, columns=[column.name for column in table.columns]))
    now = utc_now()
    connection.execute(sa.delete(annotator_pairs))
    rows = [
        {**row, "overlap": int(row["overlap"]), "kappa": finite_or_none(row["kappa"]), "updated_at": now}
        for row in figures.to_dict("records")
    ]
    for page in pages(rows, INSERT_ROWS):
        connection.execute(sa.insert(annotator_pairs), page)
