"""Loading nightly batches, late labels and drift (pipeline.store.prediction_log), on both backends."""

from __future__ import annotations

import json
from datetime import UTC, date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.store import labels, prediction_log, row_writing
from pipeline.store.tables import batches, feature_stats, feedback, predictions

DAY = date(2025, 11, 24)
NEXT_DAY = date(2025, 11, 25)


def _frame(ids, *, start=0.5) -> pd.DataFrame:
    ids = list(ids)
    return pd.DataFrame(
        {
            "example_id": ids,
            "prediction": ["cat" if index % 2 else "dog" for index in range(len(ids))],
            "score": [start + index / 1000 for index in range(len(ids))],
            "probabilities": [json.dumps({"cat": 0.25, "dog": 0.75}) for _ in ids],
        }
    )


def _load(engine, frame, *, day=DAY, model="m1", rows_in=None, rows_rejected=0, run_id=None):
    return prediction_log.load_batch(
        engine,
        batch_date=day,
        model_version=model,
        predictions=frame,
        rows_in=(len(frame) if isinstance(frame, pd.DataFrame) else 0) if rows_in is None else rows_in,
        rows_rejected=rows_rejected,
        run_id=run_id,
    )


def _rows(engine, day=DAY, model="m1") -> list[dict]:
    query = (
        sa.select(predictions)
        .where(predictions.c.batch_date == day, predictions.c.model_version == model)
        .order_by(predictions.c.example_id)
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def _batch_rows(engine) -> list[dict]:
    query = sa.select(batches).order_by(batches.c.batch_date, batches.c.model_version)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def _count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_load_batch_stores_predictions_and_the_marker(engine):
    frame = _frame([f"id{index:03d}" for index in range(25)])

    stored = _load(engine, frame, rows_in=27, rows_rejected=2, run_id="r" * 32)

    assert stored == 25
    rows = _rows(engine)
    assert [row["example_id"] for row in rows] == list(frame["example_id"])
    assert rows[3] == {
        "batch_date": DAY,
        "example_id": "id003",
        "model_version": "m1",
        "prediction": "cat",
        "score": pytest.approx(0.503),
        "probabilities": '{"cat": 0.25, "dog": 0.75}',
        "origin": "batch",  # a night's row; the server's are "online" (migration 0010)
        "requested_at": None,
        "inputs": None,  # online rows only (migration 0011)
    }
    (batch,) = _batch_rows(engine)
    assert batch["batch_date"] == DAY
    assert (batch["rows_in"], batch["rows_rejected"], batch["rows_scored"]) == (27, 2, 25)
    assert batch["status"] == "loaded"
    assert batch["run_id"] == "r" * 32
    assert batch["loaded_at"].tzinfo == UTC
    assert prediction_log.batch_loaded(engine, DAY, "m1")
    assert not prediction_log.batch_loaded(engine, NEXT_DAY, "m1")
    assert not prediction_log.batch_loaded(engine, DAY, "m2")


def test_loading_the_same_batch_again_replaces_it(engine):
    _load(engine, _frame(f"a{index}" for index in range(10)))
    _load(engine, _frame(f"a{index}" for index in range(10)))
    assert _count(engine, predictions) == 10

    stored = _load(engine, _frame(f"b{index}" for index in range(7)))

    assert stored == 7
    assert [row["example_id"] for row in _rows(engine)] == [f"b{index}" for index in range(7)]
    assert _count(engine, predictions) == 7
    (batch,) = _batch_rows(engine)
    assert batch["rows_scored"] == 7


def test_another_model_or_day_adds_its_own_rows(engine):
    ids = [f"x{index}" for index in range(5)]
    _load(engine, _frame(ids), model="m1")
    _load(engine, _frame(ids, start=0.1), model="m2")
    _load(engine, _frame(ids[:2]), day=NEXT_DAY, model="m1")
    _load(engine, _frame(ids, start=0.2), model="m2")  # rerun of m2 only

    assert len(_rows(engine, model="m1")) == 5
    assert [row["score"] for row in _rows(engine, model="m2")] == pytest.approx(
        [0.2 + index / 1000 for index in range(5)]
    )
    assert len(_rows(engine, day=NEXT_DAY)) == 2
    assert _count(engine, predictions) == 12
    assert [(row["batch_date"], row["model_version"]) for row in _batch_rows(engine)] == [
        (DAY, "m1"),
        (DAY, "m2"),
        (NEXT_DAY, "m1"),
    ]


def test_an_empty_batch_is_marked_empty(engine):
    _load(engine, _frame(["a", "b"]))

    stored = _load(engine, _frame([]), rows_in=3, rows_rejected=3)

    assert stored == 0
    assert _rows(engine) == []
    (batch,) = _batch_rows(engine)
    assert (batch["status"], batch["rows_scored"], batch["rows_in"]) == ("empty", 0, 3)
    assert prediction_log.batch_loaded(engine, DAY, "m1")

    assert _load(engine, iter([]), rows_in=0) == 0
    assert _batch_rows(engine)[0]["status"] == "empty"


def test_chunks_from_an_iterator(engine, monkeypatch):
    # Small pages, so that one chunk also takes several COPY / executemany statements.
    monkeypatch.setattr(row_writing, "COPY_ROWS", 7)
    monkeypatch.setattr(row_writing, "INSERT_ROWS", 7)
    ids = [f"c{index:03d}" for index in range(100)]

    def chunks():
        for start in range(0, 100, 30):
            chunk = _frame(ids[start : start + 30])
            chunk.index += 1000 + start  # a reader's running index, not 0..n
            chunk["extra"] = "ignored"
            yield chunk

    stored = _load(engine, chunks(), rows_in=100)

    assert stored == 100
    assert [row["example_id"] for row in _rows(engine)] == ids
    assert _batch_rows(engine)[0]["rows_scored"] == 100


TRICKY = [
    "plain",
    "comma, inside",
    'double "quoted" text',
    "single 'quoted' text",
    "line one\nline two\r\nline three\rend",
    "tab\there",
    "back\\slash \\N \\\\ end\\",
    "\\N",
    "NULL",
    "",
    "   leading and trailing spaces   ",
    "unicode: äöü ß é 中文 日本語 🚀 \u200b",
    "'); DROP TABLE predictions; --",
    '", "x"); DELETE FROM batches; --',
    "a" * 5000,
]


def test_text_round_trips_verbatim(engine):
    frame = pd.DataFrame(
        {
            "example_id": [f"{index:02d} {text[:150]}" for index, text in enumerate(TRICKY)],
            "prediction": TRICKY,
            "score": [index / 3 for index in range(len(TRICKY))],
            "probabilities": TRICKY[::-1],
        }
    )

    _load(engine, frame)

    rows = {row["example_id"]: row for row in _rows(engine)}
    assert set(rows) == set(frame["example_id"])
    for example_id, prediction, score, probabilities in frame.itertuples(index=False):
        row = rows[example_id]
        assert row["prediction"] == prediction
        assert row["probabilities"] == probabilities
        assert row["score"] == score  # exact: floats survive the CSV
    assert _count(engine, batches) == 1


def test_nulls_numbers_and_dicts(engine):
    frame = pd.DataFrame(
        {
            "example_id": [1, 2, 3, 4],
            "prediction": [None, 1.0, 2, ""],
            "score": [None, float("nan"), float("inf"), 0.5],
            "probabilities": [None, {"0": 0.25, "1": 0.75}, "", float("nan")],
        }
    )

    _load(engine, frame)

    rows = _rows(engine)
    assert [row["example_id"] for row in rows] == ["1", "2", "3", "4"]
    assert [row["prediction"] for row in rows] == [None, "1", "2", ""]
    assert [row["score"] for row in rows] == [None, None, None, 0.5]
    assert [row["probabilities"] for row in rows] == [None, '{"0": 0.25, "1": 0.75}', "", None]


def test_regression_batch_without_probabilities(engine):
    frame = pd.DataFrame({"example_id": ["a", "b"], "prediction": [1.25, 3.5], "score": [1.25, 3.5]})
    _load(engine, frame)
    assert [(row["prediction"], row["score"], row["probabilities"]) for row in _rows(engine)] == [
        ("1.25", 1.25, None),
        ("3.5", 3.5, None),
    ]


def test_a_failure_midway_keeps_the_previous_load(engine):
    _load(engine, _frame(["a", "b", "c"]), run_id="first")
    before_rows, before_batch = _rows(engine), _batch_rows(engine)

    def duplicate_across_chunks():
        yield _frame(["d", "e"])
        yield _frame(["f", "d"])  # "d" again: the primary key refuses it

    with pytest.raises(sa.exc.IntegrityError):
        _load(engine, duplicate_across_chunks(), run_id="second")

    def reader_fails():
        yield _frame(["g", "h"])
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        _load(engine, reader_fails(), run_id="third")

    with pytest.raises(ValueError, match="'i' appears more than once"):
        _load(engine, _frame(["i", "j", "i"]), run_id="fourth")

    assert _rows(engine) == before_rows
    assert _batch_rows(engine) == before_batch
    # The connection is usable afterwards.
    assert _load(engine, _frame(["k"])) == 1


def test_bad_input_is_refused_before_anything_is_written(engine):
    _load(engine, _frame(["a"]))
    with pytest.raises(ValueError, match="missing column"):
        _load(engine, pd.DataFrame({"example_id": ["b"], "prediction": ["x"]}))
    with pytest.raises(ValueError, match="no example_id"):
        _load(engine, pd.DataFrame({"example_id": ["b", None], "prediction": ["x", "y"], "score": [1, 2]}))
    with pytest.raises(ValueError, match="1 to 200 characters"):
        _load(engine, _frame(["b" * 201]))
    with pytest.raises(ValueError, match="model_version"):
        _load(engine, _frame(["b"]), model="v" * 65)
    assert [row["example_id"] for row in _rows(engine)] == ["a"]


def _feedback_rows(engine) -> dict[str, dict]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(feedback)).all()
    return {row.example_id: dict(row._mapping) for row in rows}


def test_feedback_upsert_replaces_a_label(engine):
    stored = labels.load_feedback(
        engine, pd.DataFrame({"example_id": ["a", "b", "c"], "label": ["cat", "3.5", "7"]}), source="day1.csv"
    )
    assert stored == 3

    labels.load_feedback(
        engine, pd.DataFrame({"example_id": ["b", "d", "d"], "label": ["dog", "x", "y"]}), source="day2.csv"
    )

    rows = _feedback_rows(engine)
    assert {key: (row["label"], row["label_value"], row["source"]) for key, row in rows.items()} == {
        "a": ("cat", None, "day1.csv"),
        "b": ("dog", None, "day2.csv"),
        "c": ("7", 7.0, "day1.csv"),
        "d": ("y", None, "day2.csv"),  # given twice: the last label wins
    }
    assert rows["b"]["received_at"].tzinfo == UTC


def test_feedback_numbers_and_missing_labels(engine):
    labels.load_feedback(engine, pd.DataFrame({"example_id": [1, 2], "label": [1.0, 2.5]}), source="s")
    rows = _feedback_rows(engine)
    assert (rows["1"]["label"], rows["1"]["label_value"]) == ("1", 1.0)
    assert (rows["2"]["label"], rows["2"]["label_value"]) == ("2.5", 2.5)

    with pytest.raises(ValueError, match="no label"):
        labels.load_feedback(engine, pd.DataFrame({"example_id": ["3", "4"], "label": ["x", None]}), source="s")
    assert set(_feedback_rows(engine)) == {"1", "2"}


def _stats(value=0.5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature": ["age", "age", "island"],
            "statistic": ["mean", "missing_share", "top_share"],
            "batch_value": [value, 0.0, float("nan")],
            "reference_value": [0.4, 0.0, 0.3],
        }
    )


def _drift(alerts=(False, True)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature": ["age", "island"],
            "method": ["ks", "psi"],
            "score": [0.05, 0.31],
            "threshold": [0.1, 0.2],
            "alert": list(alerts),
        }
    )


def test_record_drift_replaces_on_rerun(engine):
    prediction_log.record_drift(engine, batch_date=DAY, model_version="m1", stats=_stats(), drift=_drift())
    prediction_log.record_drift(engine, batch_date=DAY, model_version="m2", stats=_stats(), drift=_drift())
    prediction_log.record_drift(
        engine, batch_date=DAY, model_version="m1", stats=_stats(0.9), drift=_drift((True, True))
    )

    assert _count(engine, feature_stats) == 6
    with engine.connect() as connection:
        mean = connection.execute(
            sa.select(feature_stats.c.batch_value).where(
                feature_stats.c.model_version == "m1", feature_stats.c.statistic == "mean"
            )
        ).scalar_one()
        missing = (
            connection.execute(sa.select(feature_stats.c.batch_value).where(feature_stats.c.statistic == "top_share"))
            .scalars()
            .all()
        )
    assert mean == pytest.approx(0.9)
    assert missing == [None, None]
    assert [(row["feature"], row["method"]) for row in prediction_log.alerts(engine, DAY, "m1")] == [
        ("age", "ks"),
        ("island", "psi"),
    ]
    assert [row["feature"] for row in prediction_log.alerts(engine, DAY, "m2")] == ["island"]

    prediction_log.record_drift(
        engine, batch_date=DAY, model_version="m1", stats=_stats().iloc[:0], drift=_drift().iloc[:0]
    )
    assert prediction_log.alerts(engine, DAY, "m1") == []
    assert _count(engine, feature_stats) == 3


def test_bulk_paths_are_used_on_both_backends(engine, monkeypatch):
    def refuse(*args):
        raise AssertionError("the generic Core insert path was used")

    monkeypatch.setattr(row_writing, "core_rows", refuse)
    assert _load(engine, _frame(["a", "b"])) == 2


def test_the_generic_insert_path_stores_the_same(engine, monkeypatch):
    # Drivers other than psycopg2 and pysqlite fall back to SQLAlchemy Core executemany.
    monkeypatch.setattr(prediction_log, "row_writer", lambda connection: row_writing.core_rows)
    frame = pd.DataFrame(
        {
            "example_id": [f"{index:02d}" for index in range(len(TRICKY))],
            "prediction": TRICKY,
            "score": [index / 3 for index in range(len(TRICKY))],
        }
    )
    _load(engine, frame)
    assert [(row["prediction"], row["score"], row["probabilities"]) for row in _rows(engine)] == [
        (text, index / 3, None) for index, text in enumerate(TRICKY)
    ]
