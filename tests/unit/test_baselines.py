"""Unit tests for pipeline/stages/baselines.py and the diagnosis and gate that read the baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.common.columns import EXAMPLE_ID
from pipeline.stages.baselines import fit_baselines
from pipeline.stages.diagnosis import diagnose, with_baselines
from pipeline.stages.evaluation import baseline_metrics, parse_headline
from pipeline.stages.features import fit, split_arrays
from pipeline.stages.registry import baseline_refusal, decide
from pipeline.stages.schema import Schema

FINE = {"diagnosis": "fine", "reason": "val_loss settled"}
ACCURACY = {"rows": 332, "definition": {"accuracy": 1.0}}


def _splits(table: pd.DataFrame, schema: Schema, train_rows: int, validation: int = 0):
    """Train on the first rows, then `validation` rows to tune baselines on (none by default), the rest test."""
    table = table.assign(**{EXAMPLE_ID: [f"e{i}" for i in range(len(table))]})
    train, held, test = np.split(np.arange(len(table)), [train_rows, train_rows + validation])
    preprocessor = fit(table.iloc[train], schema)
    splits = {"train": train, "test": test, **({"validation": held} if validation else {})}
    return {name: split_arrays(table.iloc[rows], preprocessor) for name, rows in splits.items()}, preprocessor, table


def _tabular(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    colour = rng.choice(["red", "blue"], size=rows)
    label = np.where(x + (colour == "red") * 1.5 > 0.7, "yes", "no")
    return pd.DataFrame({"x": x, "colour": colour, "y": label})


def test_tabular_data_gets_the_trivial_linear_and_boosting_baselines_scored_on_the_test_rows():
    schema = Schema(label="y", task="classification", kinds={"x": "numeric", "colour": "categorical"})
    splits, preprocessor, table = _splits(_tabular(), schema, 300)
    found = {b.name: b for b in fit_baselines(splits["train"], splits["test"], preprocessor, table)}
    assert list(found) == ["majority", "linear", "gradient_boosting"]
    for baseline in found.values():
        assert baseline.outputs.shape == (100, 2) and not baseline.sampled
        np.testing.assert_allclose(baseline.outputs.sum(axis=1), 1.0)
    majority = (splits["train"].labels == 1).mean()
    assert found["majority"].outputs[0, 1] == pytest.approx(majority)
    metrics = baseline_metrics(splits, preprocessor, table, parse_headline("", "classification"), max_rows=50)
    assert metrics["linear"]["accuracy"] > 0.85 > metrics["majority"]["accuracy"]
    assert metrics["linear"]["fitted_rows"] == 50 and metrics["linear"]["sampled"]
    assert metrics["linear"]["headline"] == metrics["linear"]["accuracy"]


def test_text_data_gets_tfidf_with_logistic_regression_on_the_raw_text():
    rng = np.random.default_rng(1)
    topics = {"sport": ["goal", "match", "team"], "food": ["soup", "bread", "salt"]}
    labels = rng.choice(list(topics), size=200)
    text = [" ".join(rng.choice(topics[label], size=4)) + " the and" for label in labels]
    schema = Schema(label="y", task="classification", kinds={"words": "text"})
    splits, preprocessor, table = _splits(pd.DataFrame({"words": text, "y": labels}), schema, 150)
    metrics = baseline_metrics(splits, preprocessor, table, parse_headline("", "classification"), max_rows=1000)
    assert list(metrics) == ["majority", "tfidf_logistic"]  # no linear model on text alone (TF-IDF's is it), no trees
    assert metrics["tfidf_logistic"]["accuracy"] == 1.0


def test_images_get_a_linear_model_on_small_thumbnails(tmp_path):
    rng = np.random.default_rng(2)
    paths, labels = [], []
    for i in range(60):
        label = ["dark", "light"][i % 2]
        pixels = rng.integers(0, 100, (12, 12)) + (150 if label == "light" else 0)
        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
        labels.append(label)
    schema = Schema(label="y", task="classification", kinds={"picture": "image"})
    splits, preprocessor, table = _splits(pd.DataFrame({"picture": paths, "y": labels}), schema, 40)
    metrics = baseline_metrics(splits, preprocessor, table, parse_headline("", "classification"), max_rows=1000)
    assert list(metrics) == ["majority", "linear"] and metrics["linear"]["accuracy"] == 1.0


def test_regression_gets_the_mean_ridge_and_boosting():
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    schema = Schema(label="y", task="regression", kinds={"x": "numeric"})
    splits, preprocessor, table = _splits(pd.DataFrame({"x": x, "y": 5000 + 300 * x}), schema, 200)
    metrics = baseline_metrics(splits, preprocessor, table, parse_headline("", "regression"), max_rows=1000)
    assert metrics["mean"]["r2"] < 0.05 and metrics["linear"]["r2"] > 0.999
    assert metrics["gradient_boosting"]["r2"] > 0.9


def _baselines(**headlines) -> dict:
    return {name: {"headline": value, "accuracy": value} for name, value in headlines.items()}


def test_a_model_below_a_baseline_is_diagnosed_so_whatever_its_curves_say():
    judged = with_baselines(FINE, {"accuracy": 0.36}, 0.36, _baselines(majority=0.2, linear=0.45), **ACCURACY)
    assert judged["diagnosis"] == "below baseline" and judged["learning_curves"] == FINE
    assert judged["reason"].startswith("below the linear baseline (headline 0.360 vs 0.450)")


def test_a_model_at_the_majority_class_is_no_better_than_trivial():
    model = {"accuracy": 0.449}
    judged = with_baselines(FINE, model, 0.449, _baselines(majority=0.416, linear=0.44), **ACCURACY)
    assert judged["diagnosis"] == "no better than trivial"
    assert judged["reason"].startswith(
        "no better than always predicting the majority class (accuracy 0.449 vs 0.416 on 332 test rows, "
        "a gain chance alone gives 12% of the time)"
    )
    many = {"rows": 3320, "definition": {"accuracy": 1.0}}
    judged = with_baselines(FINE, model, 0.449, _baselines(majority=0.416, linear=0.44), **many)
    assert judged["diagnosis"] == "fine"  # the same gain on ten times the rows is no accident
    # Another headline is compared as it is: f1_macro far above the majority class's is a gain.
    f1 = {"majority": {"headline": 0.2, "accuracy": 0.9}, "linear": {"headline": 0.6, "accuracy": 0.9}}
    judged = with_baselines(FINE, {"accuracy": 0.9}, 0.62, f1, rows=300, definition={"f1_macro": 1.0})
    assert judged["diagnosis"] == "fine"


def test_a_noise_target_is_unpredictable_not_underfitting():
    rng = np.random.default_rng(4)
    x, noise = rng.normal(size=(400, 3)), rng.normal(size=400)
    schema = Schema(label="y", task="regression", kinds={"a": "numeric", "b": "numeric", "c": "numeric"})
    table = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": noise})
    splits, preprocessor, table = _splits(table, schema, 300)
    baselines = baseline_metrics(splits, preprocessor, table, parse_headline("", "regression"), max_rows=1000)
    flat = diagnose({"loss": [1.0, 0.99, 0.98], "val_loss": [1.01, 1.0, 1.0]})
    assert flat["diagnosis"] == "underfitting"
    judged = with_baselines(flat, {"r2": 0.01}, 0.01, baselines, rows=100, definition={"r2": 1.0})
    assert judged["diagnosis"] == "unpredictable"
    assert judged["reason"].startswith("no model beats the mean: the target may not be predictable from these features")


def test_a_model_that_beats_the_baselines_keeps_its_diagnosis_and_says_so():
    judged = with_baselines(FINE, {"accuracy": 0.9}, 0.9, _baselines(majority=0.5, linear=0.895), **ACCURACY)
    assert judged["diagnosis"] == "fine" and judged["reason"].endswith("(best: linear, 0.895)")
    assert with_baselines(FINE, {"accuracy": 0.9}, 0.9, {}, **ACCURACY) == FINE
    # A one-row test split has no r2: nothing is claimed either way.
    nan = float("nan")
    assert with_baselines(FINE, {"r2": nan}, nan, {"mean": {"headline": nan, "r2": nan}}, rows=1, definition={}) == FINE


def test_the_gate_can_refuse_a_model_that_does_not_beat_its_best_baseline():
    baselines = _baselines(majority=0.2, linear=0.45)
    why = baseline_refusal(0.44, baselines, FINE)
    assert why == "headline 0.4400 does not beat the linear baseline's 0.4500 on the same test rows"
    refused = decide("v2", 0.44, production=None, margin=0.005, baseline_refusal=why)
    assert not refused.promoted and "require_beats_baseline" in refused.reason
    assert baseline_refusal(0.46, baselines, FINE) == ""
    assert decide("v2", 0.46, production=None, margin=0.005).promoted
    trivial = {"diagnosis": "no better than trivial", "reason": "accuracy 0.46 vs 0.45"}
    assert baseline_refusal(0.46, baselines, trivial).startswith("its diagnosis is no better than trivial")
    assert "baseline_rows = 0" in baseline_refusal(0.46, {}, FINE)
    assert "no number" in baseline_refusal(float("nan"), baselines, FINE)


def test_a_baseline_that_cannot_be_fitted_is_left_out_with_a_warning(caplog):
    schema = Schema(label="y", task="classification", kinds={"words": "text"})
    table = pd.DataFrame({"words": [""] * 40, "y": ["a", "b"] * 20})
    splits, preprocessor, table = _splits(table, schema, 30)
    with caplog.at_level("WARNING"):
        found = [b.name for b in fit_baselines(splits["train"], splits["test"], preprocessor, table)]
    assert found == ["majority"] and "baseline tfidf_logistic not fitted" in caplog.text


def test_single_letter_words_count_for_the_tfidf_baseline():
    schema = Schema(label="y", task="classification", kinds={"words": "text"})
    table = pd.DataFrame({"words": ["C", "R"] * 30, "y": ["c", "r"] * 30})
    splits, preprocessor, table = _splits(table, schema, 40)
    metrics = baseline_metrics(splits, preprocessor, table, parse_headline("", "classification"), max_rows=100)
    assert metrics["tfidf_logistic"]["accuracy"] == 1.0


def test_text_regression_uses_a_sparse_ridge():
    rng = np.random.default_rng(6)
    words = rng.choice(["cheap", "dear", "plain"], size=300)
    schema = Schema(label="y", task="regression", kinds={"words": "text"})
    table = pd.DataFrame({"words": words, "y": np.select([words == "cheap", words == "dear"], [1.0, 9.0], 5.0)})
    splits, preprocessor, table = _splits(table, schema, 200)
    metrics = baseline_metrics(splits, preprocessor, table, parse_headline("", "regression"), max_rows=1000)
    assert metrics["tfidf_logistic"]["r2"] > 0.95


def test_a_text_column_beside_numbers_keeps_every_baseline_and_trees_read_the_text_lengths():
    rng = np.random.default_rng(7)
    rows = 400
    length = rng.integers(1, 12, rows)
    text = [" ".join(["word"] * n) for n in length]
    x = rng.normal(size=rows)
    y = np.where((length > 6) ^ (x > 1.0), "long", "short")  # the signal: how long the text is
    schema = Schema(label="y", task="classification", kinds={"x": "numeric", "words": "text"})
    splits, preprocessor, table = _splits(pd.DataFrame({"x": x, "words": text, "y": y}), schema, 300)
    metrics = baseline_metrics(splits, preprocessor, table, parse_headline("", "classification"), max_rows=1000)
    assert list(metrics) == ["majority", "linear", "tfidf_logistic", "gradient_boosting"]
    assert metrics["gradient_boosting"]["accuracy"] > 0.95


def test_character_n_grams_are_used_where_the_held_out_rows_say_they_help():
    rng = np.random.default_rng(8)
    letters = list("bcdfgklmnprstvz")
    # The class is in the ending; the stems of test rows are never seen in training.
    stems = ["".join(rng.choice(letters, 5)) for _ in range(600)]
    labels = rng.choice(["ly", "ness"], size=600)
    text = [stem + ending for stem, ending in zip(stems, labels)]
    schema = Schema(label="y", task="classification", kinds={"words": "text"})
    splits, preprocessor, table = _splits(pd.DataFrame({"words": text, "y": labels}), schema, 450, validation=75)
    metrics = baseline_metrics(splits, preprocessor, table, parse_headline("", "classification"), max_rows=1000)
    assert metrics["tfidf_logistic"]["accuracy"] > 0.95  # words alone: every test word is new


def test_baselines_are_tuned_on_the_validation_rows_whatever_labels_they_hold():
    schema = Schema(label="y", task="classification", kinds={"x": "numeric", "colour": "categorical"})
    table = _tabular(500).assign(**{EXAMPLE_ID: [f"e{i}" for i in range(500)]})
    table.loc[300:309, "y"] = "maybe"  # a class the training rows never had: unknown (-1) in validation
    preprocessor = fit(table.iloc[:300], schema)
    splits = {
        name: split_arrays(table.iloc[rows], preprocessor)
        for name, rows in (("train", slice(0, 300)), ("validation", slice(300, 400)), ("test", slice(400, 500)))
    }
    assert (splits["validation"].labels == -1).sum() == 10
    found = {
        b.name: b
        for b in fit_baselines(splits["train"], splits["test"], preprocessor, table, validation=splits["validation"])
    }
    assert list(found) == ["majority", "linear", "gradient_boosting"]
    for baseline in found.values():
        assert baseline.fitted_rows == 300 and not baseline.sampled  # the validation rows are not fitted on
    labels = splits["test"].labels
    assert (found["linear"].outputs.argmax(axis=1) == labels).mean() > 0.85
    assert (found["gradient_boosting"].outputs.argmax(axis=1) == labels).mean() > 0.85
