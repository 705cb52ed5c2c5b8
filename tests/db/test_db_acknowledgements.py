"""Drift acknowledgements on SQLite and PostgreSQL: what an acknowledgement covers in the
`drift_alerts` view (feature and method, up to a ceiling and a last night), and that ending one
only ever adds rows."""

from __future__ import annotations

import datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.common.columns import DRIFT_COLUMNS, STATS_COLUMNS
from pipeline.store import acknowledgements, prediction_log
from pipeline.store.acknowledgements import AcknowledgementError

NIGHTS = [datetime.date(2026, 4, day) for day in range(1, 6)]


def _night(engine, date, rows: list[tuple]) -> None:
    """Store one night's drift rows: (feature, method, score, threshold, alert)."""
    prediction_log.record_drift(
        engine,
        batch_date=date,
        model_version="m1",
        stats=pd.DataFrame(columns=STATS_COLUMNS),
        drift=pd.DataFrame(rows, columns=DRIFT_COLUMNS),
    )


def _alerts(engine, date) -> dict[tuple[str, str], bool]:
    query = sa.text("SELECT feature, method, acknowledged FROM drift_alerts WHERE batch_date = :d")
    with engine.connect() as connection:
        return {(f, m): bool(a) for f, m, a in connection.execute(query, {"d": date})}


def test_an_acknowledgement_covers_its_feature_and_methods_up_to_the_ceiling(engine):
    _night(engine, NIGHTS[0], [("month", "psi", 3.0, 0.2, True), ("month", "constant", 1.0, 0.5, True)])
    written = acknowledgements.acknowledge(engine, "month", reason="after training", actor="ana", factor=2.0)
    assert [(a.method, a.score, a.ceiling, a.batch_date) for a in written] == [
        ("constant", 1.0, 2.0, NIGHTS[0]),
        ("psi", 3.0, 6.0, NIGHTS[0]),
    ]
    assert _alerts(engine, NIGHTS[0]) == {("month", "psi"): True, ("month", "constant"): True}

    # The same alerts later pass; a new kind on the feature, a score past the ceiling, or another
    # feature's alert does not.
    _night(
        engine,
        NIGHTS[1],
        [
            ("month", "psi", 5.9, 0.2, True),
            ("month", "out_of_range", 1.0, 0.01, True),
            ("weekday", "psi", 3.0, 0.2, True),
        ],
    )
    _night(engine, NIGHTS[2], [("month", "psi", 6.1, 0.2, True), ("month", "ks", 0.1, 0.2, False)])
    assert _alerts(engine, NIGHTS[1]) == {
        ("month", "psi"): True,
        ("month", "out_of_range"): False,
        ("weekday", "psi"): False,
    }
    assert _alerts(engine, NIGHTS[2]) == {("month", "psi"): False}
    new = [a for a in prediction_log.alerts(engine, NIGHTS[1], "m1") if not a["acknowledged"]]
    assert {(a["feature"], a["method"]) for a in new} == {("month", "out_of_range"), ("weekday", "psi")}


def test_until_bounds_the_nights_and_unack_ends_it_by_adding_rows(engine):
    _night(engine, NIGHTS[0], [("weekday", "psi", 1.0, 0.2, True), ("weekday", "js", 0.5, 0.1, True)])
    acknowledgements.acknowledge(
        engine, "weekday", method="psi", reason="daily batches", actor="ana", factor=2.0, until=NIGHTS[2]
    )
    _night(engine, NIGHTS[3], [("weekday", "psi", 1.0, 0.2, True)])
    # From its night up to `until`, only its method.
    assert _alerts(engine, NIGHTS[0]) == {("weekday", "psi"): True, ("weekday", "js"): False}
    assert _alerts(engine, NIGHTS[3]) == {("weekday", "psi"): False}
    assert [row["method"] for row in acknowledgements.active(engine, on=NIGHTS[1])] == ["psi"]
    assert acknowledgements.active(engine, on=NIGHTS[3]) == []

    ended = acknowledgements.end(engine, "weekday", reason="fixed upstream", actor="bo")
    assert len(ended) == 1 and acknowledgements.active(engine) == []
    # A night that passed under it keeps it; a night after the latest one monitored does not.
    assert _alerts(engine, NIGHTS[0]) == {("weekday", "psi"): True, ("weekday", "js"): False}
    _night(engine, NIGHTS[1], [("weekday", "psi", 1.0, 0.2, True)])
    assert _alerts(engine, NIGHTS[1]) == {("weekday", "psi"): True}  # before NIGHTS[3]: monitored later, still covered
    _night(engine, NIGHTS[4], [("weekday", "psi", 1.0, 0.2, True)])
    assert _alerts(engine, NIGHTS[4]) == {("weekday", "psi"): False}
    with engine.connect() as connection:
        log = connection.execute(
            sa.text("SELECT event, feature, method, ends, actor, reason FROM drift_acknowledgements ORDER BY id")
        ).all()
    assert [tuple(row) for row in log] == [
        ("ack", "weekday", "psi", None, "ana", "daily batches"),
        ("unack", "weekday", "psi", ended[0], "bo", "fixed upstream"),
    ]


@pytest.mark.parametrize(
    ("feature", "method", "reason", "factor", "message"),
    [
        ("nothing", None, "why", 2.0, "no drift alert on 'nothing' to acknowledge"),
        ("month", "ks", "why", 2.0, "no drift alert on 'month' by ks to acknowledge"),
        ("month", None, "  ", 2.0, "an acknowledgement needs a reason"),
        ("month", None, "why", 0.5, "factor must be at least 1"),
        ("month", None, "until", 2.0, "--until 2026-04-01 is before 2026-04-02, the night of the alert"),
    ],
)
def test_an_acknowledgement_that_cannot_be_made_says_why_and_writes_nothing(
    engine, feature, method, reason, factor, message
):
    _night(engine, NIGHTS[1], [("month", "psi", 3.0, 0.2, True), ("month", "ks", 0.1, 0.2, False)])
    until = NIGHTS[0] if reason == "until" else None
    with pytest.raises(AcknowledgementError, match=message):
        acknowledgements.acknowledge(
            engine, feature, method=method, reason=reason, actor="ana", factor=factor, until=until
        )
    with pytest.raises(AcknowledgementError, match="no active acknowledgement of 'month'"):
        acknowledgements.end(engine, "month", reason="why", actor="ana")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM drift_acknowledgements")).scalar() == 0


def test_a_night_that_failed_before_an_acknowledgement_stays_failed_unless_named(engine):
    for night in NIGHTS[:2]:
        _night(engine, night, [("month", "per_night", 1.0, 0.0, True)])
    acknowledgements.acknowledge(engine, "month", reason="after training", actor="ana", factor=2.0)
    assert (_alerts(engine, NIGHTS[0]), _alerts(engine, NIGHTS[1])) == (
        {("month", "per_night"): False},
        {("month", "per_night"): True},
    )
    acknowledgements.end(engine, "month", reason="too narrow", actor="ana")
    acknowledgements.acknowledge(engine, "month", reason="since April", actor="ana", factor=2.0, since=NIGHTS[0])
    assert _alerts(engine, NIGHTS[0]) == {("month", "per_night"): True}
