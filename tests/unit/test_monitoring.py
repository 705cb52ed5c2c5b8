"""Unit tests for pipeline/stages/monitoring.py and drift_statistics.py: drift is found where it is, and only there."""

import copy
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.common.columns import DRIFT_COLUMNS, DRIFT_FRAME_COLUMNS, STATS_COLUMNS
from pipeline.stages.drift_statistics import js_noise, ks_noise, psi, psi_noise
from pipeline.stages.monitoring import DriftThresholds, alert_line, compare
from pipeline.stages.profiles import derived_features, prediction_profile, reference_profile
from pipeline.stages.schema import Schema

SCHEMA = Schema(
    label="species", task="classification", kinds={"mass": "numeric", "island": "categorical", "note": "text"}
)
IMAGE_SCHEMA = Schema(label="digit", task="classification", kinds={"image": "image"})
THRESHOLDS = DriftThresholds()
SIDE = 28  # MNIST-sized images
BLOB = 8


def _table(rows: int = 400, *, mean: float = 0.0, seed: int = 0, islands=("Biscoe", "Dream", "Torgersen")):
    rng = np.random.default_rng(seed)
    words = rng.integers(1, 6, size=rows)
    return pd.DataFrame(
        {
            "mass": rng.normal(mean, 1.0, size=rows),
            "island": rng.choice(list(islands), size=rows),
            "note": [" ".join(["bird"] * int(n)) for n in words],
            "species": rng.choice(["Adelie", "Gentoo"], size=rows),
        }
    )


def _score(drift: pd.DataFrame, feature: str, method: str) -> pd.Series:
    row = drift[(drift["feature"] == feature) & (drift["method"] == method)]
    assert len(row) == 1, (feature, method, drift)
    return row.iloc[0]


def _stat(stats: pd.DataFrame, feature: str, statistic: str) -> pd.Series:
    row = stats[(stats["feature"] == feature) & (stats["statistic"] == statistic)]
    assert len(row) == 1, (feature, statistic, stats)
    return row.iloc[0]


@pytest.fixture(scope="module")
def reference():
    return reference_profile(_table(), SCHEMA)


def test_identical_batch_scores_zero_and_never_alerts(reference):
    stats, drift = compare(_table(), SCHEMA, reference, THRESHOLDS)
    assert tuple(stats.columns) == STATS_COLUMNS and tuple(drift.columns) == DRIFT_FRAME_COLUMNS
    assert drift["note"].isna().all()  # every check ran
    assert set(drift["feature"]) == {"mass", "island", "note:length"}
    assert drift["score"].abs().max() < 1e-9
    assert not drift["alert"].any()
    assert alert_line(drift) == ""


def test_psi_of_identical_distributions_is_zero_and_grows_with_the_shift():
    assert psi([10, 20, 70], [0.1, 0.2, 0.7]) == pytest.approx(0.0)  # counts or proportions
    assert 0 < psi([0.2, 0.2, 0.6], [0.1, 0.2, 0.7]) < psi([0.6, 0.2, 0.2], [0.1, 0.2, 0.7])
    assert psi([1.0, 0.0], [0.5, 0.5]) < 10  # an empty bin is floored, not infinite
    assert np.isnan(psi([0, 0], [0.5, 0.5]))


def test_shifted_normal_has_high_psi_and_ks(reference):
    _, drift = compare(_table(mean=2.0, seed=1), SCHEMA, reference, THRESHOLDS)
    assert _score(drift, "mass", "psi")["score"] > 0.2
    assert _score(drift, "mass", "ks")["score"] > 0.2
    assert _score(drift, "mass", "psi")["alert"] and _score(drift, "mass", "ks")["alert"]
    assert not _score(drift, "island", "js")["alert"]  # only the shifted column drifts


def test_ks_is_small_for_a_fresh_sample_of_the_same_distribution(reference):
    # A new sample from the same normal: the D statistic stays small, unlike a p-value test,
    # which is what the threshold on D is for.
    _, same = compare(_table(seed=7), SCHEMA, reference, THRESHOLDS)
    _, shifted = compare(_table(mean=2.0, seed=7), SCHEMA, reference, THRESHOLDS)
    assert _score(same, "mass", "ks")["score"] < 0.15 and not _score(same, "mass", "ks")["alert"]
    assert _score(shifted, "mass", "ks")["score"] > 0.6


def test_new_dominant_category_drifts_by_js_and_psi(reference):
    batch = _table(seed=2, islands=("Atlantis", "Atlantis", "Atlantis", "Dream"))
    stats, drift = compare(batch, SCHEMA, reference, THRESHOLDS)
    assert _score(drift, "island", "js")["score"] > THRESHOLDS.js
    assert _score(drift, "island", "js")["alert"] and _score(drift, "island", "psi")["alert"]
    assert _stat(stats, "island", "categories")["reference_value"] == 3


def test_missing_share_is_reported(reference):
    batch = _table(seed=3)
    batch.loc[:99, "mass"] = np.nan  # 100 of 400 rows
    stats, _ = compare(batch, SCHEMA, reference, THRESHOLDS)
    row = _stat(stats, "mass", "missing_share")
    assert row["batch_value"] == pytest.approx(0.25) and row["reference_value"] == 0.0
    assert _stat(stats, "mass", "rows")["batch_value"] == 400


def test_text_is_monitored_by_token_count(reference):
    long_notes = _table(seed=4).assign(note="a much longer note about one bird than usual here")
    derived = derived_features(long_notes, SCHEMA)
    assert list(derived.columns) == ["mass", "island", "note:length"]
    assert (derived["note:length"] == 10).all()
    _, drift = compare(long_notes, SCHEMA, reference, THRESHOLDS)
    assert _score(drift, "note:length", "psi")["alert"]


def test_constant_training_column_does_not_crash():
    schema = Schema(label="y", task="classification", kinds={"depth": "numeric"})
    reference = reference_profile(pd.DataFrame({"depth": [5.0] * 50}), schema)
    profile = reference["features"]["depth"]
    assert profile["edges"] == [None, 5.0, 5.0, None]
    assert profile["proportions"] == [0.0, 1.0, 0.0]  # below, equal, above
    assert profile["std"] == 0.0
    _, same = compare(pd.DataFrame({"depth": [5.0] * 40}), schema, reference, THRESHOLDS)
    assert not same["alert"].any()
    _, moved = compare(pd.DataFrame({"depth": [6.0] * 40}), schema, reference, THRESHOLDS)
    assert _score(moved, "depth", "psi")["alert"] and _score(moved, "depth", "ks")["alert"]


def _digit(path, *, offset: int = 0, intensity: int = 255):
    """A square blob on black, centred, or moved `offset` pixels right."""
    pixels = np.zeros((SIDE, SIDE), dtype=np.uint8)
    left = (SIDE - BLOB) // 2 + offset
    pixels[(SIDE - BLOB) // 2 : (SIDE + BLOB) // 2, left : left + BLOB] = intensity
    Image.fromarray(pixels, mode="L").save(path, format="PNG")
    return str(path)


def _images(tmp_path, name: str, offsets, rows: int = 60, intensity: int = 255) -> pd.DataFrame:
    """A table of `rows` image paths cycling through blobs at the given offsets."""
    paths = [
        _digit(tmp_path / f"{name}{i}.png", offset=offset, intensity=intensity) for i, offset in enumerate(offsets)
    ]
    return pd.DataFrame({"image": [paths[i % len(paths)] for i in range(rows)]})


def test_image_features_of_a_centred_blob(tmp_path):
    derived = derived_features(_images(tmp_path, "c", [0], rows=1), IMAGE_SCHEMA)
    row = derived.iloc[0]
    assert row["image:centre_x"] == pytest.approx(0.5) and row["image:centre_y"] == pytest.approx(0.5)
    assert row["image:brightness"] == pytest.approx(BLOB * BLOB / SIDE**2, abs=1e-6)
    assert row["image:width"] == SIDE and row["image:height"] == SIDE
    blank = tmp_path / "blank.png"
    Image.new("L", (10, 6)).save(blank)
    blank_row = derived_features(pd.DataFrame({"image": [str(blank)]}), IMAGE_SCHEMA).iloc[0]
    assert (blank_row["image:centre_x"], blank_row["image:centre_y"]) == (0.5, 0.5)


def test_blob_moved_right_by_a_quarter_drifts_in_centre_x(tmp_path):
    reference = reference_profile(_images(tmp_path, "train", [-1, 0, 1]), IMAGE_SCHEMA)
    moved = _images(tmp_path, "batch", [SIDE // 4 - 1, SIDE // 4, SIDE // 4 + 1])
    _, drift = compare(moved, IMAGE_SCHEMA, reference, THRESHOLDS)
    assert _score(drift, "image:centre_x", "psi")["alert"] and _score(drift, "image:centre_x", "ks")["alert"]
    assert not drift[drift["feature"] == "image:centre_y"]["alert"].any()
    assert not drift[drift["feature"] == "image:brightness"]["alert"].any()
    assert alert_line(drift).startswith("drift in image:centre_x (psi ")


def test_dimmer_images_drift_in_brightness(tmp_path):
    reference = reference_profile(_images(tmp_path, "train", [-1, 0, 1]), IMAGE_SCHEMA)
    dim = _images(tmp_path, "dim", [-1, 0, 1], intensity=120)
    stats, drift = compare(dim, IMAGE_SCHEMA, reference, THRESHOLDS)
    assert _score(drift, "image:brightness", "psi")["alert"]
    brightness = _stat(stats, "image:brightness", "mean")
    assert brightness["batch_value"] < brightness["reference_value"]
    assert not drift[drift["feature"] == "image:centre_x"]["alert"].any()


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    table = _images(tmp_path, "train", [0], rows=10)
    table = pd.concat(
        [table, pd.DataFrame({"image": [str(broken), str(tmp_path / "gone.png"), None]})], ignore_index=True
    )
    reference = reference_profile(table, IMAGE_SCHEMA)
    profile = reference["features"]["image:width"]
    assert profile["unreadable"] == 2
    assert profile["rows"] == 11 and profile["missing_share"] == pytest.approx(1 / 11)
    assert profile["sample"] == [float(SIDE)] * 10
    stats, _ = compare(table, IMAGE_SCHEMA, reference, THRESHOLDS)
    assert _stat(stats, "image:centre_x", "unreadable")["batch_value"] == 2


def test_reference_images_are_sampled(tmp_path):
    reference = reference_profile(_images(tmp_path, "train", [0, 1], rows=50), IMAGE_SCHEMA, sample=20)
    assert reference["features"]["image:width"]["rows"] == 20


def test_reference_is_json_and_works_after_a_round_trip(reference):
    reference = {**reference, "predictions": prediction_profile(["a", "b", "b", None])}
    text = json.dumps(reference, allow_nan=False)
    restored = json.loads(text)
    assert restored == reference
    assert reference["predictions"]["proportions"] == {"(missing)": 0.25, "a": 0.25, "b": 0.5}
    batch = _table(mean=1.0, seed=5)
    predictions = ["a"] * 400
    original = compare(batch, SCHEMA, reference, THRESHOLDS, predictions)
    again = compare(batch, SCHEMA, restored, THRESHOLDS, predictions)
    pd.testing.assert_frame_equal(original[0], again[0])
    pd.testing.assert_frame_equal(original[1], again[1])


def test_all_missing_training_column_stays_valid_json():
    schema = Schema(label="y", task="classification", kinds={"x": "numeric"})
    reference = reference_profile(pd.DataFrame({"x": [np.nan] * 5}), schema)
    json.dumps(reference, allow_nan=False)
    _, drift = compare(pd.DataFrame({"x": [1.0] * 40}), schema, reference, THRESHOLDS)
    assert np.isnan(_score(drift, "x", "ks")["score"]) and not _score(drift, "x", "ks")["alert"]
    assert _score(drift, "x", "psi")["alert"]  # a column that was always missing now has values


def test_min_rows_suppresses_alerts_on_a_tiny_batch(reference):
    _, drift = compare(_table(rows=10, mean=3.0, seed=6), SCHEMA, reference, THRESHOLDS)
    assert _score(drift, "mass", "psi")["score"] > 0.2
    assert not drift["alert"].any()
    _, drift = compare(_table(rows=10, mean=3.0, seed=6), SCHEMA, reference, DriftThresholds(min_rows=5))
    assert _score(drift, "mass", "ks")["alert"]


def test_small_batches_from_the_training_distribution_do_not_alert():
    # PSI over ten bins exceeds 0.2 on most 30-row samples by chance; the size-aware thresholds
    # must keep a night of ordinary rows quiet while a real shift still alerts.
    rng = np.random.default_rng(11)
    schema = Schema(label="y", task="classification", kinds={"x": "numeric", "c": "categorical"})
    training = pd.DataFrame({"x": rng.normal(size=1500), "c": rng.choice(list("abcdefghij"), 1500)})
    profile = reference_profile(training, schema)
    quiet = [
        compare(
            pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(list("abcdefghij"), 60)}),
            schema,
            profile,
            DriftThresholds(),
        )[1]["alert"].any()
        for _ in range(100)
    ]
    assert sum(quiet) <= 2
    _, shifted = compare(
        pd.DataFrame({"x": rng.normal(2.0, 1.0, 60), "c": rng.choice(list("abcdefghij"), 60)}),
        schema,
        profile,
        DriftThresholds(),
    )
    assert shifted.set_index(["feature", "method"]).loc[("x", "ks"), "alert"]


def test_thresholds_grow_for_small_batches_and_shrink_to_the_configured_value():
    assert psi_noise(30, 1500, 11, 0.999) > psi_noise(300, 1500, 11, 0.999) > psi_noise(30_000, 1500, 11, 0.999)
    assert ks_noise(60, 1500, 0.999) > 0.2 > ks_noise(5000, 5000, 0.999)
    assert js_noise(60, 1500, 11, 0.999) > js_noise(6000, 1500, 11, 0.999)


def test_predicted_class_shift_alerts(reference):
    expected = prediction_profile(["Adelie", "Gentoo"] * 50)
    batch = _table(seed=8)
    _, steady = compare(batch, SCHEMA, reference, THRESHOLDS, ["Adelie", "Gentoo"] * 200, expected)
    _, shifted = compare(batch, SCHEMA, reference, THRESHOLDS, ["Adelie"] * 380 + ["Gentoo"] * 20, expected)
    assert _score(steady, "(prediction)", "psi")["score"] == pytest.approx(0.0)
    row = _score(shifted, "(prediction)", "psi")
    assert row["alert"] and row["threshold"] == THRESHOLDS.prediction_psi


def test_alert_line_names_each_feature_once():
    drift = pd.DataFrame(
        [
            ("image:centre_x", "psi", 1.834, 0.2, True),
            ("image:centre_x", "ks", 0.714, 0.2, True),
            ("mass", "psi", 0.05, 0.2, False),
            ("mass", "ks", 0.31, 0.2, True),
            ("(prediction)", "psi", 0.95, 0.2, True),
        ],
        columns=DRIFT_COLUMNS,
    )
    assert alert_line(drift) == (
        "drift in image:centre_x (psi 1.83 > 0.20, ks 0.71 > 0.20), "
        "mass (ks 0.31 > 0.20), (prediction) (psi 0.95 > 0.20)"
    )
    assert alert_line(drift.assign(alert=False)) == ""
    assert alert_line(pd.DataFrame(columns=DRIFT_COLUMNS)) == ""


def test_empty_batch_gives_empty_frames(reference):
    stats, drift = compare(_table().iloc[:0], SCHEMA, reference, THRESHOLDS, [], prediction_profile(["a"]))
    assert stats.empty and tuple(stats.columns) == STATS_COLUMNS
    assert drift.empty and tuple(drift.columns) == DRIFT_FRAME_COLUMNS


def test_missing_feature_column_is_a_clear_error(reference):
    with pytest.raises(ValueError, match="'island'"):
        compare(_table().drop(columns="island"), SCHEMA, reference, THRESHOLDS)


def test_compare_does_not_mutate_its_inputs(reference):
    batch = _table(mean=2.0, seed=9)
    batch.loc[:4, "island"] = None
    predictions = ["Adelie"] * 400
    expected = prediction_profile(["Adelie", "Gentoo"])
    before = (batch.copy(deep=True), copy.deepcopy(reference), list(predictions), copy.deepcopy(expected))
    compare(batch, SCHEMA, reference, THRESHOLDS, predictions, expected)
    pd.testing.assert_frame_equal(batch, before[0])
    assert (reference, predictions, expected) == before[1:]


def test_a_batch_of_only_unreadable_images_scores_nan_without_crashing(tmp_path):
    reference = reference_profile(_images(tmp_path, "train", [0], rows=40), IMAGE_SCHEMA)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    stats, drift = compare(pd.DataFrame({"image": [str(broken)] * 40}), IMAGE_SCHEMA, reference, THRESHOLDS)
    assert drift["score"].isna().all() and not drift["alert"].any()
    assert _stat(stats, "image:width", "unreadable")["batch_value"] == 40


def test_regression_predictions_drift_as_numbers():
    rng = np.random.default_rng(21)
    schema = Schema(label="y", task="regression", kinds={"x": "numeric"})
    profile = reference_profile(pd.DataFrame({"x": rng.normal(size=500)}), schema)
    reference = prediction_profile(rng.normal(100, 5, 300).tolist(), numeric=True)
    batch = pd.DataFrame({"x": rng.normal(size=60)})
    _, steady = compare(batch, schema, profile, DriftThresholds(), rng.normal(100, 5, 60).tolist(), reference)
    _, shifted = compare(batch, schema, profile, DriftThresholds(), rng.normal(1100, 5, 60).tolist(), reference)
    assert not steady[steady["feature"] == "(prediction)"]["alert"].any()
    assert set(shifted[shifted["alert"]]["method"]) == {"psi", "ks", "wasserstein"}


NUMERIC = Schema(label="y", task="regression", kinds={"x": "numeric", "z": "numeric"})


@pytest.fixture(scope="module")
def numeric_reference():
    rng = np.random.default_rng(21)
    training = pd.DataFrame({"x": rng.normal(10, 2, 50_000), "z": rng.exponential(3, 50_000), "y": 0.0})
    return reference_profile(training, NUMERIC)


@pytest.mark.parametrize("rows", [30, 200, 20_000, 1_000_000])
def test_two_samples_of_one_distribution_stay_quiet_at_every_size(numeric_reference, rows):
    rng = np.random.default_rng(rows)
    night = pd.DataFrame({"x": rng.normal(10, 2, rows), "z": rng.exponential(3, rows)})
    _, drift = compare(night, NUMERIC, numeric_reference, THRESHOLDS)
    assert not drift["alert"].any(), drift[drift["alert"]]
    assert set(drift["method"]) == {"psi", "ks", "wasserstein", "missing", "out_of_range", "constant"}


def test_a_small_certain_mean_shift_on_a_large_night_alerts_by_effect_size_only(numeric_reference):
    rng = np.random.default_rng(22)
    night = pd.DataFrame({"x": rng.normal(10 + 0.2 * 2, 2, 20_000), "z": rng.exponential(3, 20_000)})
    _, drift = compare(night, NUMERIC, numeric_reference, THRESHOLDS)
    shifted = _score(drift, "x", "wasserstein")
    assert shifted["alert"] and shifted["score"] == pytest.approx(0.2, abs=0.03)
    assert not _score(drift, "x", "psi")["alert"] and not _score(drift, "x", "ks")["alert"]  # why it is needed
    assert not drift[drift["feature"] == "z"]["alert"].any()
    # The same shift on a 30-row night is within what chance gives that many rows: quiet.
    _, small = compare(night.head(30), NUMERIC, numeric_reference, THRESHOLDS)
    assert not small["alert"].any()


def test_wasserstein_noise_falls_with_the_night_and_reads_the_reference_spread():
    from pipeline.stages.drift_statistics import wasserstein, wasserstein_noise

    sample = np.sort(np.random.default_rng(23).normal(0, 1, 2000))
    floors = [wasserstein_noise(rows, sample, 1.0, 0.999) for rows in (30, 1000, 1_000_000)]
    assert floors[0] > 0.25 > floors[1] > floors[2] > 0.03
    assert wasserstein(sample + 0.5, sample, 1.0) == pytest.approx(0.5)
    assert wasserstein(sample * 1000 + 5, sample * 1000, 1000.0) == pytest.approx(0.005)
    assert np.isnan(wasserstein(np.array([]), sample, 1.0))


def test_a_two_valued_column_of_real_data_split_at_random_stays_quiet():
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame  # `sex` takes two values
    schema = Schema(label="target", task="regression", kinds={c: "numeric" for c in frame.columns if c != "target"})
    order = np.random.default_rng(8).permutation(len(frame))  # the halves that alerted on `sex` at a factor of 3
    reference = reference_profile(frame.iloc[order[:221]], schema)
    _, drift = compare(frame.iloc[order[221:]], schema, reference, THRESHOLDS)
    sex = _score(drift, "sex", "wasserstein")
    assert not drift["alert"].any() and 0.25 < sex["score"] < sex["threshold"]


MIXED = Schema(label="y", task="regression", kinds={"a": "numeric", "b": "numeric", "colour": "categorical"})
COLOURS, MIX = ["red", "green", "blue"], [0.5, 0.3, 0.2]


def _mixed(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {"a": rng.normal(10, 2, rows), "b": rng.exponential(3, rows), "colour": rng.choice(COLOURS, rows, p=MIX)}
    )


SHIFTS = {  # name -> (column, change, the columns that must alert)
    "no shift": ("a", lambda s, r: s, set()),
    "mean + 0.2 sd": ("a", lambda s, r: s + 0.4, {"a"}),
    "mean + 0.5 sd": ("a", lambda s, r: s + 1.0, {"a"}),
    "variance x 1.5": ("a", lambda s, r: 10 + (s - 10) * np.sqrt(1.5), {"a"}),
    "unit change x 1000": ("b", lambda s, r: s * 1000, {"b"}),
    "stuck value": ("a", lambda s, r: s * 0 + 10.0, {"a"}),
    "new category at 30%": ("colour", lambda s, r: s.where(r.random(len(s)) > 0.3, "purple"), {"colour"}),
    "changed category mix": ("colour", lambda s, r: pd.Series(r.choice(COLOURS, len(s), p=MIX[::-1])), {"colour"}),
    "30% missing": ("b", lambda s, r: s.where(r.random(len(s)) > 0.3), {"b"}),
    "5% beyond the training range": ("b", lambda s, r: s.where(r.random(len(s)) > 0.05, s.max() * 3 + 100), {"b"}),
}


@pytest.fixture(scope="module")
def mixed_reference():
    return reference_profile(_mixed(50_000, np.random.default_rng(30)).assign(y=0.0), MIXED)


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_each_generated_shift_of_a_20000_row_night_alerts_exactly_on_its_column(mixed_reference, shift):
    column, change, truth = SHIFTS[shift]
    rng = np.random.default_rng(31)
    night = _mixed(20_000, rng)
    night[column] = change(night[column], rng)
    _, drift = compare(night, MIXED, mixed_reference, THRESHOLDS)
    assert set(drift[drift["alert"]]["feature"]) == truth, drift[drift["alert"]]


@pytest.mark.parametrize("rows", [30, 200, 1_000_000])
def test_a_night_without_a_shift_is_quiet_in_every_column_and_method_at_any_size(mixed_reference, rows):
    # The truth table's "no shift" row beyond 20,000 rows: numbers and categories, every method.
    night = _mixed(rows, np.random.default_rng(rows + 1))
    _, drift = compare(night, MIXED, mixed_reference, THRESHOLDS)
    assert not drift["alert"].any(), drift[drift["alert"]]
    assert {"psi", "ks", "wasserstein", "js", "missing", "out_of_range", "unseen", "constant"} <= set(drift["method"])


@pytest.mark.parametrize(
    ("shift", "method"),
    [
        ("30% missing", "missing"),
        ("5% beyond the training range", "out_of_range"),
        ("stuck value", "constant"),
        ("new category at 30%", "unseen"),
    ],
)
def test_each_data_quality_check_alerts_on_its_own_fault(mixed_reference, shift, method):
    column, change, _ = SHIFTS[shift]
    rng = np.random.default_rng(32)
    night = _mixed(2_000, rng)
    night[column] = change(night[column], rng)
    stats, drift = compare(night, MIXED, mixed_reference, THRESHOLDS)
    assert _score(drift, column, method)["alert"]
    quiet = drift[(drift["method"] == method) & (drift["feature"] != column)]
    assert not quiet["alert"].any(), quiet
    if method == "out_of_range":
        assert _stat(stats, column, "out_of_range_share")["batch_value"] == pytest.approx(0.05, abs=0.015)
    if method == "unseen":
        assert _stat(stats, column, "unseen_share")["batch_value"] == pytest.approx(0.3, abs=0.03)


def test_real_data_split_at_random_stays_within_its_training_range_by_chance():
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame  # 284 rows a half: the range itself is uncertain
    schema = Schema(label="target", task="regression", kinds={c: "numeric" for c in frame.columns if c != "target"})
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(len(frame))
        reference = reference_profile(frame.iloc[order[:284]], schema)
        _, drift = compare(frame.iloc[order[284:]], schema, reference, THRESHOLDS)
        assert not drift["alert"].any(), drift[drift["alert"]]


def test_repeated_ids_are_a_drift_row_on_the_id_column_only_where_there_is_one(reference):
    batch = _table(200, seed=3)
    with_ids = dataclasses.replace(SCHEMA, id_column="id")
    stats, drift = compare(batch, with_ids, reference, THRESHOLDS, duplicate_ids=(10, 210))
    row = drift[drift["method"] == "duplicate_id"]
    assert row["feature"].tolist() == ["id"] and row["alert"].tolist() == [True]
    assert row["score"].iloc[0] == pytest.approx(10 / 210)
    assert _stat(stats, "id", "duplicate_id_share")["batch_value"] == pytest.approx(10 / 210)
    _, one = compare(batch, with_ids, reference, THRESHOLDS, duplicate_ids=(1, 210))
    assert not one.loc[one["method"] == "duplicate_id", "alert"].any()  # 0.5% < 1%
    _, without = compare(batch, SCHEMA, reference, THRESHOLDS, duplicate_ids=(10, 210))
    assert "duplicate_id" not in set(without["method"])
