"""Online loads change a night's quality and conflict rows by what they add: after every load the
stored rows equal a full recount (resolutions.rebuild), on SQLite and PostgreSQL, through new
answers, answers that replace earlier ones, labeled and conflicting examples, and a regression."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.store import labels, online_log, prediction_log, resolutions
from pipeline.store.tables import night_conflicts, night_quality
from tests.db.support import register_model

DAY = date(2026, 12, 1)


def _answers(model: str, rows: list[tuple[str, str, float]], day: date = DAY) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "batch_date": day,
            "example_id": [row[0] for row in rows],
            "model_version": model,
            "prediction": [row[1] for row in rows],
            "score": [row[2] for row in rows],
            "probabilities": None,
            "requested_at": datetime(day.year, day.month, day.day, 8, tzinfo=UTC),
            "inputs": json.dumps({"x": 1}),
        }
    )


def _stored(connection) -> tuple[list, list]:
    quality = sorted(tuple(row) for row in connection.execute(sa.select(night_quality)))
    columns = [c for c in night_conflicts.c if c.name != "id"]
    conflicts = sorted(tuple(row) for row in connection.execute(sa.select(*columns)))
    return quality, conflicts


def _assert_as_a_recount(engine) -> None:
    with engine.connect() as connection:
        kept = _stored(connection)
        resolutions.rebuild(connection)
        recounted = _stored(connection)
        connection.rollback()
    assert _approximately(kept) == _approximately(recounted)


def _approximately(stored: tuple[list, list]) -> tuple[list, list]:
    quality, conflicts = stored
    return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in row) for row in quality], conflicts


def test_online_loads_keep_every_night_s_figures_equal_to_a_recount(engine):
    register_model(engine, "clf", "classification")
    register_model(engine, "reg", "regression")
    night = pd.DataFrame({"example_id": ["b1", "b2", "b3"], "prediction": ["cat", "dog", "cat"], "score": 0.9})
    prediction_log.load_batch(
        engine, batch_date=DAY, model_version="clf", predictions=night, rows_in=3, rows_rejected=0
    )
    labels.load_feedback(engine, pd.DataFrame({"example_id": ["b1", "o1", "o2"], "label": "cat"}), source="a.csv")
    # o2 relabeled by a second annotator who disagrees: a conflict on whatever predicted it.
    second = pd.DataFrame({"example_id": ["o2", "o3"], "label": ["dog", "cat"], "annotator": "ben"})
    labels.load_feedback(engine, second, source="b.csv")
    _assert_as_a_recount(engine)

    loads = [
        _answers("clf", [("o1", "cat", 0.8), ("o2", "dog", 0.6)]),  # labeled right; conflicting
        _answers("clf", [("o4", "cat", 0.7)]),  # not labeled
        _answers("clf", [("o1", "dog", 0.55), ("o3", "cat", 0.9)]),  # o1 now wrong; o3 relabeled
        _answers("clf", [("o2", "cat", 0.9)]),  # the conflict moves from 'dog' to 'cat'
        _answers("clf", [("b1", "dog", 0.5)]),  # an example the night scored too: its own row
        _answers("clf", [("o9", "cat", 0.5)], day=date(2026, 12, 2)),  # a new day
    ]
    for load in loads:
        online_log.load_online(engine, load)
        _assert_as_a_recount(engine)

    labels.load_feedback(engine, pd.DataFrame({"example_id": ["r1", "r2"], "label": ["2.5", "4"]}), source="c.csv")
    online_log.load_online(engine, _answers("reg", [("r1", "2.0", 2.0), ("r2", "5.0", 5.0), ("r3", "1.0", 1.0)]))
    _assert_as_a_recount(engine)
    online_log.load_online(engine, _answers("reg", [("r1", "2.5", 2.5)]))  # its error goes to 0
    _assert_as_a_recount(engine)

    with engine.connect() as connection:
        online = connection.execute(
            sa.select(night_quality.c.predicted, night_quality.c.labeled, night_quality.c.correct).where(
                night_quality.c.batch_date == DAY,
                night_quality.c.model_version == "clf",
                night_quality.c.origin == "online",
            )
        ).one()
    # o1, o2, o3, o4, b1 answered; labeled: o1 (wrong), o3 (right), b1 (wrong); o2's tie is unresolved.
    assert tuple(online) == (5, 3, 1)
