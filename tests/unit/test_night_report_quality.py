"""The nightly report's live quality against the trivial predictor, and its failed-step banners.

The trivial predictor's figures come from SQL (predictions joined to the resolved_labels view),
the predictor itself from the model's folders (pipeline/artifacts/trivial.py).
"""

from __future__ import annotations

import datetime
import html
import json
import re

import pandas as pd
import pytest

from pipeline.artifacts.trivial import training_majority_class, training_mean
from pipeline.rendering.reports.nightly import FailedStep, nightly_report
from pipeline.store import database, online_log, prediction_log, registry
from pipeline.store import labels as labels_store
from pipeline.store.night_history import TrivialPredictor, night_history
from tests.unit.test_reports import ESCAPED, HOSTILE, MODEL, NIGHTS, assert_self_contained, prediction_log_db

__all__ = ["prediction_log_db"]  # the fixture, shared with test_reports.py


def page_text(text: str) -> str:
    """The page as a person reads it: tags out, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def test_live_accuracy_worse_than_always_the_majority_class_says_so(prediction_log_db):
    # Labeled nights: 30 of 40 labels are "cat"; the model got 20 of 40 right.
    history = night_history(
        prediction_log_db, batch_date=NIGHTS[-1], model_version=MODEL, trivial=TrivialPredictor("cat")
    )
    trivial = {row["batch_date"]: row for row in history.trivial_quality}
    quality = {row["batch_date"]: row for row in history.quality}
    for night in NIGHTS[:2]:
        assert trivial[night]["labeled"] == quality[night]["labeled"] == 40
        assert trivial[night]["accuracy"] == pytest.approx(0.75)
        assert quality[night]["accuracy"] == pytest.approx(0.5)
    assert set(trivial) == set(NIGHTS[:2])  # no labels, no figure

    text = nightly_report(history)
    assert_self_contained(text)
    read = page_text(text)
    night = f"Night {NIGHTS[1].isoformat()} (model {MODEL}, 40 labeled)"
    assert f"{night}: live accuracy 0.5000; always 'cat': 0.7500" in read
    assert "WORSE than always 'cat'" in read and "-0.250 WORSE" in read
    assert 'class="verdict bad"' in text and text.count('<tr class="below">') == 2


def test_live_accuracy_better_than_the_trivial_predictor_and_hostile_names_escaped(prediction_log_db):
    history = night_history(
        prediction_log_db, batch_date=NIGHTS[1], model_version=MODEL, trivial=TrivialPredictor(HOSTILE)
    )
    assert [row["accuracy"] for row in history.trivial_quality] == [pytest.approx(0.25)] * 2
    text = nightly_report(history)
    assert_self_contained(text)
    assert HOSTILE not in text and f"always &#x27;{ESCAPED}&#x27;" in text
    assert "0.2500 better than always" in page_text(text) and 'class="verdict good"' in text


def test_without_a_trivial_predictor_the_report_says_it_is_unknown(prediction_log_db):
    history = night_history(prediction_log_db, batch_date=NIGHTS[-1], model_version=MODEL)
    assert history.trivial is None and history.trivial_quality == []
    read = page_text(nightly_report(history))
    assert "live accuracy 0.5000" in read and "would score is not known" in read


def test_regression_mae_beside_always_the_training_mean(tmp_path):
    engine = database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        registry.register(
            engine,
            version="r1",
            run_id=None,
            path=str(tmp_path / "model"),
            sha256="0" * 64,
            task="regression",
            data_version=None,
            evaluation_path=None,
            headline=0.5,
            metrics={"test": {"mae": 1.0}},
            actor="test",
        )
        night = datetime.date(2026, 5, 1)
        ids = [f"n{i}" for i in range(4)]
        prediction_log.load_batch(
            engine,
            batch_date=night,
            model_version="r1",
            predictions=pd.DataFrame({"example_id": ids, "prediction": "", "score": [10.0, 20.0, 30.0, 40.0]}),
            rows_in=4,
            rows_rejected=0,
        )
        labels = pd.DataFrame({"example_id": ids, "label": ["11", "19", "33", "37.5"]})
        labels_store.load_feedback(engine, labels, source="t")
        history = night_history(engine, batch_date=night, model_version="r1", trivial=TrivialPredictor(25.0))
    finally:
        database.dispose_all()
    (row,) = history.trivial_quality
    assert row["labeled"] == 4 and row["mae"] == pytest.approx((14 + 6 + 8 + 12.5) / 4)
    read = page_text(nightly_report(history))
    assert "live MAE 1.8750; always 25 (the training mean): 10.1250" in read and "better than always 25" in read


def test_a_failed_step_is_a_red_banner_above_what_the_night_has(prediction_log_db):
    history = night_history(prediction_log_db, batch_date=NIGHTS[1], model_version=MODEL)
    failures = [FailedStep("IngestFeedback", f"DataError: labels.csv has no column 'label' ({HOSTILE})")]
    text = nightly_report(history, failures=failures)
    page = assert_self_contained(text)
    read = page_text(text)
    assert "IngestFeedback FAILED : DataError: labels.csv has no column 'label'" in read
    assert read.index("IngestFeedback FAILED") < read.index("No drift")  # first, above the drift verdict
    assert HOSTILE not in text
    for heading in ("Rows per night", "Drift per feature", "Live quality"):
        assert heading in page.headings
    assert "FAILED" not in nightly_report(history)


def write_lineage(root, counts: dict, *, upstream: dict | None = None):
    evaluation = root / "06_evaluation" / "e1"
    evaluation.mkdir(parents=True)
    lineage = {"SplitData": "s1"} if upstream is None else upstream
    (evaluation / "version.json").write_text(json.dumps({"upstream": lineage}))
    split = root / "03_split" / "s1"
    split.mkdir(parents=True)
    (split / "checks.json").write_text(json.dumps({"class_counts": counts}))
    return evaluation


def test_training_majority_class_is_read_through_the_evaluations_lineage(tmp_path):
    counts = {"late": {"train": 301, "test": 400}, "on time": {"train": 959, "test": 10}}
    assert training_majority_class(write_lineage(tmp_path / "a", counts)) == "on time"  # train's, not test's
    tie = {"10": {"train": 5}, "9": {"train": 5}, "2": {"train": 1}}
    assert training_majority_class(write_lineage(tmp_path / "b", tie)) == "9"  # natural order, as the baseline
    assert training_majority_class(write_lineage(tmp_path / "c", counts, upstream={})) is None
    assert training_majority_class(tmp_path / "gone") is None and training_majority_class(None) is None


def test_training_mean_is_the_regression_preprocessors(tmp_path):
    (tmp_path / "preprocessor.json").write_text(json.dumps({"task": "regression", "target_mean": 12.5}))
    assert training_mean(tmp_path) == 12.5
    (tmp_path / "preprocessor.json").write_text(json.dumps({"task": "classification", "classes": ["a"]}))
    assert training_mean(tmp_path) is None and training_mean(tmp_path / "gone") is None


def test_online_answers_are_counted_with_their_night_and_their_quality_shown_apart(prediction_log_db):
    # `overnight serve` answered 10 requests on the second night's day, all 'cat'; 6 labeled 'cat'.
    night = NIGHTS[1]
    answered = pd.DataFrame(
        {
            "batch_date": night,
            "example_id": [f"online-{n}" for n in range(10)],
            "model_version": MODEL,
            "prediction": "cat",
            "score": 0.8,
            "probabilities": None,
            "requested_at": pd.Timestamp(night, tz="UTC") + pd.Timedelta(hours=9),
            "inputs": None,
        }
    )
    online_log.load_online(prediction_log_db, answered)
    labels_store.load_feedback(
        prediction_log_db, pd.DataFrame({"example_id": [f"online-{n}" for n in range(6)], "label": "cat"}), source="x"
    )
    history = night_history(prediction_log_db, batch_date=night, model_version=MODEL)
    assert history.online == {(night, MODEL): 10}

    read = page_text(nightly_report(history))
    assert "40 rows scored, 2 rejected; 10 answered online that day" in read
    # Together: 50 predicted, 46 labeled, 26 right; the night's files 40 labeled at 0.5; online 6 of 6.
    assert f"{night.isoformat()} {MODEL} 50 46 0.5652 40 0.5000 6 1.0000" in read
