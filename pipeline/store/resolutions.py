"""The resolved labels and per-night quality figures, kept up to date where labels and predictions
are written (migration 0007): monitoring reads them by key, so its cost follows the nights asked
about, not the history stored (benchmarks/bench_history.py, docs/performance.md).

The rule (the label most annotators gave; a tie to the tied label of the annotator first in
`[labeling] tie_order`, else unresolved) is the SQL below, the one 0006's `resolved_labels` view
ran over every label, here narrowed to the examples a load touched. Every function runs on the
caller's connection, inside the transaction that wrote the labels or predictions, so a reader
never sees labels without their resolution.

Rows written to `feedback` or `predictions` by hand, outside pipeline.store, are not seen until
:func:`rebuild` runs (`overnight`'s loaders all come through here).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date

import sqlalchemy as sa

from pipeline.store.row_writing import DELETE_IDS, pages
from pipeline.store.tables import label_resolutions, night_conflicts, night_quality, predictions

__all__ = ["rebuild", "refresh_examples", "refresh_nights", "serialize"]

logger = logging.getLogger(__name__)

Night = tuple[date, str]  # (batch_date, model_version)

# {where} narrows the labels read: one page of example ids, or nothing for a rebuild.
_RESOLVE = """
WITH votes AS (
    SELECT f.example_id, f.label, COUNT(*) AS votes, MIN(a.tie_rank) AS best_rank,
           MAX(f.label_value) AS label_value, MAX(f.received_at) AS received_at
    FROM feedback f
    LEFT JOIN annotators a ON a.annotator = f.annotator
    {where}
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

_QUALITY = """
INSERT INTO night_quality
    (batch_date, model_version, origin, predicted, labeled, correct, abs_error_sum, abs_errors)
SELECT p.batch_date, p.model_version, p.origin, COUNT(*), COUNT(r.example_id),
       SUM(CASE WHEN r.example_id IS NOT NULL AND p.prediction = r.label THEN 1 ELSE 0 END),
       SUM(ABS(p.score - r.label_value)), COUNT(ABS(p.score - r.label_value))
FROM predictions p
LEFT JOIN label_resolutions r ON r.example_id = p.example_id AND r.label IS NOT NULL
{where}
GROUP BY p.batch_date, p.model_version, p.origin
"""

_CONFLICTS = """
INSERT INTO night_conflicts (batch_date, model_version, predicted_class, relabeled, conflicting)
SELECT p.batch_date, p.model_version, p.prediction, COUNT(*),
       SUM(CASE WHEN r.distinct_labels > 1 THEN 1 ELSE 0 END)
FROM predictions p
JOIN label_resolutions r ON r.example_id = p.example_id
WHERE r.annotators > 1 {where}
GROUP BY p.batch_date, p.model_version, p.prediction
"""

_REFRESH_LOCK_KEY = 0x6F76_6E69_7265_73  # "ovnires": see serialize
_ONE_NIGHT = "p.batch_date = :batch_date AND p.model_version = :model_version"


def refresh_examples(connection: sa.Connection, example_ids: Iterable[str]) -> set[Night]:
    """Resolve these examples' labels again, then refresh the nights that scored them.

    Cost: the labels and predictions of these examples, plus those nights' predictions (index
    lookups on both backends), whatever the history holds.

    Returns:
        The (batch_date, model_version) nights refreshed.
    """
    resolve = sa.text(_RESOLVE.format(where="WHERE f.example_id IN :ids")).bindparams(
        sa.bindparam("ids", expanding=True)
    )
    serialize(connection)
    nights: set[Night] = set()
    for page in pages(sorted(set(example_ids)), DELETE_IDS):
        connection.execute(sa.delete(label_resolutions).where(label_resolutions.c.example_id.in_(page)))
        connection.execute(resolve, {"ids": page})
        scored = sa.select(predictions.c.batch_date, predictions.c.model_version).where(
            predictions.c.example_id.in_(page)
        )
        nights.update((row[0], row[1]) for row in connection.execute(scored.distinct()))
    refresh_nights(connection, nights)
    return nights


def serialize(connection: sa.Connection) -> None:
    """Hold, until the transaction ends, the lock every refresh of these tables takes.

    A night's batch load and a label load lock different things (pipeline/store/prediction_log.py,
    pipeline/store/labels.py). On PostgreSQL, without this one lock in common, a label load would
    not see a batch not yet committed (and leave its night without the label), or reinsert a
    night's row the batch load is replacing. Whoever comes second here sees the other's rows.
    SQLite has one writer at a time anyway.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_REFRESH_LOCK_KEY)))


def refresh_nights(connection: sa.Connection, nights: Iterable[Night]) -> None:
    """Compute the quality and conflict rows of these nights again from their predictions."""
    keys = [{"batch_date": night, "model_version": model} for night, model in sorted(set(nights))]
    if not keys:
        return
    serialize(connection)
    for table in (night_quality, night_conflicts):
        delete = sa.delete(table).where(
            table.c.batch_date == sa.bindparam("batch_date"), table.c.model_version == sa.bindparam("model_version")
        )
        connection.execute(delete, keys)
    for sql in (_QUALITY.format(where=f"WHERE {_ONE_NIGHT}"), _CONFLICTS.format(where=f"AND {_ONE_NIGHT}")):
        connection.execute(sa.text(sql).bindparams(sa.bindparam("batch_date", type_=sa.Date())), keys)


def rebuild(connection: sa.Connection) -> None:
    """Resolve every label and compute every night again (after a change of tie-break ranks that
    decides labels, or rows written to `feedback` or `predictions` by hand): history-sized."""
    serialize(connection)
    for table in (label_resolutions, night_quality, night_conflicts):
        connection.execute(sa.delete(table))
    connection.execute(sa.text(_RESOLVE.format(where="")))
    connection.execute(sa.text(_QUALITY.format(where="")))
    connection.execute(sa.text(_CONFLICTS.format(where="")))
    logger.info("resolved labels and per-night quality rebuilt from every label and prediction")


def ranks_changed(before: dict[str, int | None], after: dict[str, int | None]) -> Sequence[str]:
    """The annotators whose tie-break rank differs between two {annotator: rank} readings."""
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
