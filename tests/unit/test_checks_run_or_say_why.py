"""Every drift check runs or says why not, `unseen` works for any number of categories, and a
predicted class that vanishes (or swells) alerts by its own rule (`class_share`)."""

import datetime
import json

import numpy as np
import pandas as pd
import pytest

from pipeline.artifacts.monitoring import DriftFolder
from pipeline.common.columns import DRIFT_COLUMNS
from pipeline.rendering.reports.nightly import nightly_report
from pipeline.stages.drift_statistics import NOT_RUN, score
from pipeline.stages.monitoring import DriftThresholds, alert_line, compare, compare_classes
from pipeline.stages.profiles import (
    MAX_VOCABULARY,
    OTHER,
    TOP_CATEGORIES,
    categorical_profile,
    prediction_profile,
    reference_profile,
    with_training_vocabulary,
)
from pipeline.stages.schema import Schema
from pipeline.store.night_history import NightHistory

THRESHOLDS = DriftThresholds()
DESTINATIONS = [f"D{i:03d}" for i in range(96)]  # the 96-category column
SCHEMA = Schema(label="late", task="classification", kinds={"dest": "categorical", "distance": "numeric"})
PREDICTIONS_ONLY = Schema(label="late", task="classification", kinds={})
LATE_SHARE = 0.041  # the share of 'late' predictions on the test split


def _flights(rows: int, rng: np.random.Generator, destinations=DESTINATIONS) -> pd.DataFrame:
    # Zipf-like destination shares: a few hubs, a long tail, as real routes are.
    weights = 1 / np.arange(1, len(destinations) + 1)
    return pd.DataFrame(
        {
            "dest": rng.choice(destinations, size=rows, p=weights / weights.sum()),
            "distance": rng.gamma(4.0, 250.0, size=rows),
        }
    )


def _row(drift: pd.DataFrame, feature: str, method: str) -> pd.Series:
    found = drift[(drift["feature"] == feature) & (drift["method"] == method)]
    assert len(found) == 1, (feature, method, drift)
    return found.iloc[0]


@pytest.fixture(scope="module")
def training():
    return reference_profile(_flights(20_000, np.random.default_rng(0)), SCHEMA)


# --- unseen keeps the whole vocabulary ------------------------------------------------------


def test_the_profile_keeps_every_category_but_proportions_only_for_the_top_ones(training):
    profile = training["features"]["dest"]
    assert profile["vocabulary"] == sorted(DESTINATIONS)
    assert len(profile["proportions"]) == TOP_CATEGORIES + 1 and profile["proportions"][OTHER] > 0
    assert json.loads(json.dumps(training)) == training  # still plain JSON


def test_unseen_runs_on_a_96_category_column_and_alerts_on_new_destinations(training):
    rng = np.random.default_rng(1)
    _, quiet = compare(_flights(2_000, rng), SCHEMA, training, THRESHOLDS)
    row = _row(quiet, "dest", "unseen")
    assert row["score"] == 0.0 and not row["alert"] and pd.isna(row["note"])
    night = _flights(2_000, rng)
    night.loc[: int(0.1 * len(night)) - 1, "dest"] = [f"NEW{i % 7}" for i in range(int(0.1 * len(night)))]
    stats, drifted = compare(night, SCHEMA, training, THRESHOLDS)
    assert _row(drifted, "dest", "unseen")["alert"]
    share = stats[(stats["feature"] == "dest") & (stats["statistic"] == "unseen_share")]["batch_value"]
    assert share.iloc[0] == pytest.approx(0.1)


def test_beyond_the_kept_vocabulary_unseen_says_why_it_did_not_run():
    many = pd.DataFrame({"dest": [f"T{i}" for i in range(MAX_VOCABULARY + 1)], "distance": 1.0})
    reference = reference_profile(many, SCHEMA)
    assert reference["features"]["dest"]["vocabulary"] is None
    _, drift = compare(many.head(100), SCHEMA, reference, THRESHOLDS)
    row = _row(drift, "dest", "unseen")
    assert np.isnan(row["score"]) and not row["alert"]
    assert row["note"] == "the reference had 10,001 categories, more than the 10,000 whose names it keeps"


def test_an_old_reference_without_the_vocabulary_keeps_working_or_says_why(training):
    old = json.loads(json.dumps(training))
    del old["features"]["dest"]["vocabulary"]  # a reference.json from before the vocabulary
    _, drift = compare(_flights(500, np.random.default_rng(2)), SCHEMA, old, THRESHOLDS)
    row = _row(drift, "dest", "unseen")
    assert np.isnan(row["score"]) and "top 50 of 96 categories" in row["note"] and "refit" in row["note"]
    few = {**old["features"]["dest"], "proportions": {"JFK": 0.5, "LAX": 0.5, OTHER: 0.0}, "distinct": 2}
    del few["singletons"]
    small = {**old, "features": {**old["features"], "dest": few}}
    night = pd.DataFrame({"dest": ["JFK", "LAX", "SFO", "JFK"] * 25, "distance": 500.0})
    _, drift = compare(night, SCHEMA, small, THRESHOLDS)
    assert _row(drift, "dest", "unseen")["score"] == pytest.approx(0.25)  # all its categories were kept


def test_a_long_tailed_column_matching_training_is_quiet_good_turing():
    # 3,000 categories over 20,000 rows: many seen once, so a fresh night meets new ones by chance
    # (a few percent), more than 1 / (n + 1) would allow.
    names = [f"C{i}" for i in range(3_000)]
    rng = np.random.default_rng(3)
    reference = reference_profile(_flights(20_000, rng, names), SCHEMA)
    assert reference["features"]["dest"]["singletons"] > 100
    for seed in range(20):
        _, drift = compare(_flights(3_000, np.random.default_rng(100 + seed), names), SCHEMA, reference, THRESHOLDS)
        row = _row(drift, "dest", "unseen")
        assert row["score"] > 0 and not row["alert"], row


def test_other_references_keep_the_training_vocabulary():
    training = categorical_profile(pd.Series(["a", "b", "c", "d"]))
    week = categorical_profile(pd.Series(["a", "a", "e"]))
    merged = with_training_vocabulary(week, training)
    assert merged["vocabulary"] == ["a", "b", "c", "d", "e"] and week["vocabulary"] == ["a", "e"]
    assert with_training_vocabulary(week, {**training, "vocabulary": None})["vocabulary"] == ["a", "e"]


# --- every NaN score says why ---------------------------------------------------------------


def test_a_column_empty_tonight_says_so_in_every_check_that_could_not_run(training):
    night = _flights(200, np.random.default_rng(4)).assign(dest=None, distance=np.nan)
    _, drift = compare(night, SCHEMA, training, THRESHOLDS)
    skipped = drift[drift["score"].isna()]
    assert set(zip(skipped["feature"], skipped["method"])) == {
        ("dest", "unseen"),
        ("dest", "constant"),
        ("distance", "ks"),
        ("distance", "wasserstein"),
        ("distance", "out_of_range"),
        ("distance", "constant"),
    }
    assert (skipped["note"] == "no values tonight").all() and not skipped["alert"].any()
    assert drift.loc[drift["score"].notna() & ~drift["method"].eq("class_share"), "note"].isna().all()


def test_one_value_tonight_says_constant_needs_two(training):
    night = _flights(200, np.random.default_rng(5))
    night.loc[1:, "distance"] = np.nan
    _, drift = compare(night, SCHEMA, training, THRESHOLDS)
    assert _row(drift, "distance", "constant")["note"] == "1 value tonight: constant needs at least 2"


def test_the_drift_folder_keeps_the_contract_columns_and_the_notes_in_its_summary(training, tmp_path):
    night = _flights(200, np.random.default_rng(6)).assign(dest=None)
    stats, drift = compare(night, SCHEMA, training, THRESHOLDS)
    folder = DriftFolder(tmp_path)
    folder.write(stats, drift, {"alerts": 0})
    assert tuple(folder.drift().columns) == DRIFT_COLUMNS
    assert {"feature": "dest", "method": "unseen", "note": "no values tonight"} in folder.notes()
    assert folder.summary()["alerts"] == 0
    plain = DriftFolder(tmp_path / "plain")
    plain.path.mkdir()
    plain.write(stats, drift[list(DRIFT_COLUMNS)], {"alerts": 0})  # a frame without notes
    assert plain.notes() == [] and tuple(plain.drift().columns) == DRIFT_COLUMNS


def _history(drift_rows: list[dict]) -> NightHistory:
    night = datetime.date(2026, 7, 14)
    rows = [{"batch_date": night, "model_version": "m1", **row} for row in drift_rows]
    return NightHistory(
        batch_date=night,
        model_version="m1",
        dates=[night],
        task="classification",
        batches=[],
        drift=rows,
        chosen={night: "m1"},
        counts={"on_time": 300},
        values=None,
        quality=[],
        test_metrics={},
        evaluation_path=None,
    )


def test_the_report_shows_not_run_with_its_reason_never_ok():
    history = _history(
        [
            {"feature": "dest", "method": "unseen", "score": None, "threshold": 0.05, "alert": False},
            {"feature": "dest", "method": "js", "score": 0.01, "threshold": 0.1, "alert": False},
        ]
    )
    why = "the reference had 12,345 categories, more than the 10,000 whose names it keeps"
    page = nightly_report(history, drift_notes=[{"feature": "dest", "method": "unseen", "note": why}])
    assert f"not run: {why}" in page
    assert "not run: no reason on record" in nightly_report(history)  # drift folders from before notes
    cells = page.split("This night")[1]
    assert cells.count(">ok<") == 1  # js only


# --- class_share: a class the model stops (or starts) predicting -----------------------------


def _reference_predictions(rows: int = 1_000) -> dict:
    late = round(LATE_SHARE * rows)
    return prediction_profile(["late"] * late + ["on_time"] * (rows - late))


def _night(late: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame(index=range(rows)), ["late"] * late + ["on_time"] * (rows - late)


def test_a_night_without_its_4_percent_class_alerts_where_psi_does_not():
    batch, predicted = _night(0, 300)
    _, drift = compare(batch, PREDICTIONS_ONLY, {"features": {}}, THRESHOLDS, predicted, _reference_predictions())
    psi = _row(drift, "(prediction)", "psi")
    assert psi["score"] < 0.2 and not psi["alert"]  # why the rule is needed
    late = _row(drift, "(prediction):late", "class_share")
    assert late["alert"] and late["score"] > late["threshold"] >= THRESHOLDS.class_share
    assert not _row(drift, "(prediction):on_time", "class_share")["alert"]
    assert alert_line(drift) == (
        f"drift in (prediction):late (class_share {late['score']:.2f} > {late['threshold']:.2f}: "
        "0 of 300 tonight (0%), 4.1% of 1,000 in the reference)"
    )


def test_a_class_predicted_five_times_as_often_alerts():
    batch, predicted = _night(60, 300)  # 20% against 4.1%
    _, drift = compare(batch, PREDICTIONS_ONLY, {"features": {}}, THRESHOLDS, predicted, _reference_predictions())
    assert _row(drift, "(prediction):late", "class_share")["alert"]
    assert _row(drift, "(prediction):late", "class_share")["note"].startswith("60 of 300 tonight (20%)")


def test_a_class_absent_on_a_small_night_is_chance_not_an_alert():
    batch, predicted = _night(0, 30)  # 0 of 30 happens one night in four at 4.1%
    _, drift = compare(batch, PREDICTIONS_ONLY, {"features": {}}, THRESHOLDS, predicted, _reference_predictions())
    assert not drift["alert"].any()


@pytest.mark.parametrize("rows", [30, 300, 3_000])
def test_nights_matching_the_reference_rarely_alert_at_any_size(rows):
    # Both sides are samples: the reference's 1,000 test predictions and the night's rows.
    rng = np.random.default_rng(rows)
    nights, alerts = 1_000, 0
    for _ in range(nights):
        reference = _reference_predictions_drawn(rng)
        late = int(rng.binomial(rows, LATE_SHARE))
        drift = compare_classes({"late": late, "on_time": rows - late}, reference, THRESHOLDS)
        alerts += any(row[4] for row in drift)
    assert alerts / nights <= 0.003  # the other checks' 0.999, with room for 1,000 draws


def _reference_predictions_drawn(rng: np.random.Generator) -> dict:
    late = int(rng.binomial(1_000, LATE_SHARE))
    return prediction_profile(["late"] * late + ["on_time"] * (1_000 - late))


def test_a_class_new_tonight_and_no_predictions_at_all():
    reference = _reference_predictions()
    batch, predicted = _night(0, 300)
    predicted = predicted[:200] + ["cancelled"] * 100
    _, drift = compare(batch, PREDICTIONS_ONLY, {"features": {}}, THRESHOLDS, predicted, reference)
    assert _row(drift, "(prediction):cancelled", "class_share")["alert"]
    _, empty = compare(batch, PREDICTIONS_ONLY, {"features": {}}, THRESHOLDS, [], reference)
    row = _row(empty, "(prediction)", "class_share")
    assert np.isnan(row["score"]) and row["note"] == "no predictions tonight" and not row["alert"]


def test_a_nan_score_always_carries_a_reason_and_a_taken_score_none():
    _, value, _, alert, note = score("psi", np.nan, 0.2, 100, 30)
    assert np.isnan(value) and not alert and note == NOT_RUN
    assert score("psi", np.nan, 0.2, 100, 30, "no values tonight")[4] == "no values tonight"
    assert score("psi", 0.5, 0.2, 100, 30, "no values tonight")[3:] == (True, None)


def test_a_long_class_name_still_fits_the_run_metric_and_the_note_keeps_it_whole():
    from pipeline.common.metrics import Metric

    names = ["a class whose name runs well past what a metric name holds, one", "a class whose name runs well past two"]
    reference = prediction_profile([names[0]] * 500 + [names[1]] * 500)
    drift = compare_classes({names[0]: 10, names[1]: 290}, reference, THRESHOLDS)
    assert len({row[0] for row in drift}) == 2  # both kept apart after the cut
    for feature, method, value, *_ in drift:
        Metric(f"drift_{method}:{feature}", value, split="batch")  # as MonitorDrift records each row
    rare = next(row for row in drift if row[5].startswith(f"class {names[0]!r}: 10 of 300"))
    assert rare[4]  # 3% against 50%: alerts, named in full
