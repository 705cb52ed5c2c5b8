"""The analyst views (prediction_quality_daily and _by_origin, labeling_queue, drift_alerts), on both
backends."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.store import labels, online_log, prediction_log
from pipeline.store.views import (
    drift_alerts_view,
    labeling_queue_view,
    prediction_quality_by_origin_view,
    prediction_quality_daily_view,
)
from tests.db.support import register_model

DAY1 = date(2025, 11, 24)
DAY2 = date(2025, 11, 25)
DAY3 = date(2025, 11, 26)


def _load(engine, day, model, rows):
    """rows: (example_id, prediction, score)."""
    frame = pd.DataFrame(rows, columns=["example_id", "prediction", "score"])
    frame["probabilities"] = [json.dumps({row[1]: row[2]}) for row in rows]
    prediction_log.load_batch(
        engine, batch_date=day, model_version=model, predictions=frame, rows_in=len(rows), rows_rejected=0
    )


def _labels(engine, pairs, source="labels.csv"):
    frame = pd.DataFrame(pairs, columns=["example_id", "label"])
    labels.load_feedback(engine, frame, source=source)


def _quality(engine) -> dict[tuple[date, str], dict]:
    view = prediction_quality_daily_view
    with engine.connect() as connection:
        rows = connection.execute(sa.select(view)).all()
    return {(row.batch_date, row.model_version): dict(row._mapping) for row in rows}


@pytest.fixture
def scored(engine):
    """A classification model scored on three days, a regression model on one."""
    register_model(engine, "clf", "classification")
    register_model(engine, "reg", "regression")
    _load(engine, DAY1, "clf", [("a", "cat", 0.9), ("b", "dog", 0.6), ("c", "cat", 0.8), ("d", "dog", 0.55)])
    _load(engine, DAY2, "clf", [("e", "dog", 0.7), ("f", "cat", 0.51)])
    _load(engine, DAY3, "clf", [("g", "cat", 0.99)])
    _load(engine, DAY1, "reg", [("r1", "1.0", 1.0), ("r2", "2.5", 2.5), ("r3", "4.0", 4.0)])
    return engine


def test_quality_needs_labels(scored):
    assert _quality(scored) == {}


def test_prediction_quality_daily(scored):
    _labels(
        scored,
        [
            ("a", "cat"),  # right
            ("b", "cat"),  # wrong
            ("c", "cat"),  # right; d stays unlabeled
            ("e", "dog"),  # right; f unlabeled
            ("r1", "2"),  # |1.0 - 2| = 1.0
            ("r2", "2.0"),  # |2.5 - 2| = 0.5; r3 unlabeled
            ("zz", "cat"),  # a label for nothing we scored
        ],
    )

    quality = _quality(scored)

    assert set(quality) == {(DAY1, "clf"), (DAY2, "clf"), (DAY1, "reg")}  # DAY3: no labels
    day1 = quality[(DAY1, "clf")]
    assert (day1["predicted"], day1["labeled"]) == (4, 3)
    assert day1["accuracy"] == pytest.approx(2 / 3)
    assert day1["mae"] is None
    day2 = quality[(DAY2, "clf")]
    assert (day2["predicted"], day2["labeled"], day2["accuracy"]) == (2, 1, pytest.approx(1.0))
    regression = quality[(DAY1, "reg")]
    assert (regression["predicted"], regression["labeled"]) == (3, 2)
    assert regression["mae"] == pytest.approx(0.75)
    assert regression["accuracy"] is None


def _answer_online(engine, day, model, rows):
    """rows: (example_id, prediction, score), answered by `overnight serve` on `day`."""
    frame = pd.DataFrame(rows, columns=["example_id", "prediction", "score"])
    frame["batch_date"], frame["model_version"] = day, model
    frame["probabilities"] = [json.dumps({row[1]: row[2]}) for row in rows]
    frame["requested_at"] = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    frame["inputs"] = [json.dumps({"x": n}) for n in range(len(rows))]
    online_log.load_online(engine, frame)


def test_online_answers_are_counted_with_their_night_and_shown_apart(scored):
    # "a" is scored by the night and asked about online the same day: one row of each origin.
    _answer_online(scored, DAY1, "clf", [("a", "dog", 0.7), ("o1", "cat", 0.8), ("o2", "cat", 0.9)])
    _labels(scored, [("a", "cat"), ("b", "cat"), ("o1", "cat"), ("o2", "dog")])

    together = _quality(scored)[(DAY1, "clf")]
    with scored.connect() as connection:
        rows = connection.execute(sa.select(prediction_quality_by_origin_view)).all()
    apart = {row.origin: row for row in rows if (row.batch_date, row.model_version) == (DAY1, "clf")}

    # The night: a right, b wrong (c, d unlabeled); online: a wrong, o1 right, o2 wrong.
    assert (apart["batch"].predicted, apart["batch"].labeled, apart["batch"].accuracy) == (4, 2, 0.5)
    assert (apart["online"].predicted, apart["online"].labeled) == (3, 3)
    assert apart["online"].accuracy == pytest.approx(1 / 3)
    assert (together["predicted"], together["labeled"]) == (7, 5)
    assert together["accuracy"] == pytest.approx(2 / 5)


def test_quality_follows_a_corrected_label(scored):
    _labels(scored, [("a", "cat"), ("b", "cat")])
    assert _quality(scored)[(DAY1, "clf")]["accuracy"] == pytest.approx(0.5)

    _labels(scored, [("b", "dog")], source="correction.csv")

    assert _quality(scored)[(DAY1, "clf")]["accuracy"] == pytest.approx(1.0)


def test_quality_of_an_unregistered_model_has_no_figures(engine):
    _load(engine, DAY1, "ghost", [("a", "cat", 0.9)])
    _labels(engine, [("a", "cat")])
    row = _quality(engine)[(DAY1, "ghost")]
    assert (row["labeled"], row["accuracy"], row["mae"]) == (1, None, None)


def test_views_answer_plain_sql(scored):
    # The analyst's path: psql or a BI tool, no SQLAlchemy types.
    _labels(scored, [("a", "cat")])
    with scored.connect() as connection:
        quality = connection.execute(
            sa.text("SELECT model_version, labeled, accuracy FROM prediction_quality_daily")
        ).all()
        queued = connection.execute(sa.text("SELECT count(*) FROM labeling_queue")).scalar_one()
        alerts = connection.execute(sa.text("SELECT count(*) FROM drift_alerts")).scalar_one()
    assert [tuple(row) for row in quality] == [("clf", 1, 1.0)]
    assert (queued, alerts) == (9, 0)


def test_labeling_queue_excludes_labeled_rows(scored):
    _labels(scored, [("a", "cat"), ("d", "dog"), ("r2", "2")])
    view = labeling_queue_view

    with scored.connect() as connection:
        rows = connection.execute(sa.select(view).order_by(view.c.score, view.c.example_id)).all()

    assert [row.example_id for row in rows] == ["f", "b", "e", "c", "g", "r1", "r3"]
    first = rows[0]
    assert (first.batch_date, first.model_version, first.prediction) == (DAY2, "clf", "cat")
    assert json.loads(first.probabilities) == {"cat": 0.51}


def test_drift_alerts_shows_only_alerts(engine):
    drift = pd.DataFrame(
        {
            "feature": ["age", "island", "bill", "mass"],
            "method": ["ks", "psi", "js", "psi"],
            "score": [0.05, 0.31, 0.4, 0.2],
            "threshold": [0.1, 0.2, 0.1, 0.25],
            "alert": [False, True, True, None],
        }
    )
    stats = pd.DataFrame(columns=["feature", "statistic", "batch_value", "reference_value"])
    prediction_log.record_drift(engine, batch_date=DAY1, model_version="clf", stats=stats, drift=drift)
    prediction_log.record_drift(
        engine, batch_date=DAY2, model_version="clf", stats=stats, drift=drift.assign(alert=False)
    )

    view = drift_alerts_view
    with engine.connect() as connection:
        rows = connection.execute(sa.select(view).order_by(view.c.feature)).all()

    assert [tuple(row) for row in rows] == [
        (DAY1, "clf", "bill", "js", pytest.approx(0.4), pytest.approx(0.1), None, False),
        (DAY1, "clf", "island", "psi", pytest.approx(0.31), pytest.approx(0.2), None, False),
    ]
    assert [row["feature"] for row in prediction_log.alerts(engine, DAY1, "clf")] == ["bill", "island"]
    assert prediction_log.alerts(engine, DAY2, "clf") == []
