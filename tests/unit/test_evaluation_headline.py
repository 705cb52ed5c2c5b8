"""Unit tests for the headline of pipeline/stages/evaluation.py: the imbalance rule, and the same
definition for the model, its baselines, the report and the registration gate (run_metrics'
"headline" rows are metrics.json's values, tests/tasks/test_baselines.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from pipeline.common.columns import EXAMPLE_ID
from pipeline.errors import DataError
from pipeline.stages.evaluation import IMBALANCED_SHARE, evaluate, headline_on_table, resolve_headline
from pipeline.stages.features import fit, split_arrays
from pipeline.stages.preprocessor import NUMERIC_INPUT
from pipeline.stages.registry import decide
from pipeline.stages.schema import Schema

SCHEMA = Schema(label="y", task="classification", kinds={"x": "numeric"})
HISTORY = {"loss": [1.0, 0.6, 0.4, 0.35], "val_loss": [1.0, 0.7, 0.55, 0.56]}


class ScoreModel:
    """A stand-in for a Keras model: the logit of the second class is `slope` times the scaled x."""

    def __init__(self, slope: float = 3.0, classes: int = 2):
        self.slope, self.classes = slope, classes

    def predict_on_batch(self, batch: dict) -> np.ndarray:
        x = batch[NUMERIC_INPUT][:, :1]  # (rows, 1): the scaled x
        logits = np.zeros((len(x), self.classes))
        logits[:, 1:] = self.slope * x
        return logits


def _labels(*counts: int) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def _imbalanced_table(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """About 12% "sick": x is higher for them, with overlap."""
    rng = np.random.default_rng(seed)
    sick = rng.uniform(size=rows) < 0.12
    x = rng.normal(size=rows) + 1.5 * sick
    return pd.DataFrame({EXAMPLE_ID: [f"e{i}" for i in range(rows)], "x": x, "y": np.where(sick, "sick", "well")})


def _splits(table: pd.DataFrame):
    train, validation, test = np.split(np.arange(len(table)), [len(table) // 2, 3 * len(table) // 4])
    preprocessor = fit(table.iloc[train], SCHEMA)
    rows = {"train": train, "validation": validation, "test": test}
    return {name: split_arrays(table.iloc[part], preprocessor) for name, part in rows.items()}, preprocessor


# --- the rule ------------------------------------------------------------------------------------


def test_a_configured_headline_always_wins():
    chosen = resolve_headline("f1_macro:0.7, accuracy:0.3", "classification", _labels(95, 5), ("a", "b"))
    assert chosen["definition"] == {"f1_macro": 0.7, "accuracy": 0.3}
    assert chosen["rule"] == "configured: [EvaluateModel] headline = f1_macro:0.7, accuracy:0.3"
    assert resolve_headline("accuracy", "classification", _labels(95, 5), ("a", "b"))["definition"] == {"accuracy": 1.0}


def test_balanced_classes_keep_accuracy_and_say_why():
    chosen = resolve_headline("", "classification", _labels(60, 40), ("a", "b"))
    assert chosen["definition"] == {"accuracy": 1.0}
    assert chosen["rule"] == (
        "default for classification: accuracy, as the largest class 'a' holds 60.0% of the 100 training labels "
        "(under 70%)"
    )


def test_an_imbalanced_binary_task_is_headlined_by_roc_auc():
    chosen = resolve_headline("  ", "classification", _labels(30, 70), ("benign", "malignant"))
    assert IMBALANCED_SHARE == 0.7  # 70% is imbalanced already
    assert chosen["definition"] == {"roc_auc": 1.0}
    assert chosen["rule"] == (
        "default for imbalanced classes: roc_auc, not accuracy, as class 'malignant' holds 70.0% of the 100 training "
        "labels (at least 70%) and always predicting it scores that accuracy"
    )


def test_an_imbalanced_multiclass_task_is_headlined_by_balanced_accuracy():
    labels = np.concatenate([_labels(80, 10, 10), [-1] * 50])  # unknown classes (-1) do not count
    chosen = resolve_headline("", "classification", labels, ("a", "b", "c"))
    assert chosen["definition"] == {"balanced_accuracy": 1.0}
    assert "80.0% of the 100 training labels" in chosen["rule"]


def test_regression_and_missing_labels_keep_the_plain_default():
    assert resolve_headline("", "regression", np.array([1.0, 2.0]), ()) == {
        "definition": {"r2": 1.0},
        "rule": "default for regression: r2",
    }
    assert resolve_headline("", "classification", None, ("a", "b"))["definition"] == {"accuracy": 1.0}


# --- one definition everywhere -------------------------------------------------------------------


def test_evaluate_headlines_an_imbalanced_task_and_its_baselines_by_roc_auc():
    table = _imbalanced_table()
    splits, preprocessor = _splits(table)
    evaluation = evaluate(ScoreModel(), preprocessor, splits, HISTORY, headline="", examples=table, baseline_rows=1000)
    document = evaluation.document
    test = document["splits"]["test"]
    assert document["headline"]["definition"] == {"roc_auc": 1.0}
    assert document["headline"]["rule"].startswith("default for imbalanced classes: roc_auc")
    assert document["headline"]["value"] == test["roc_auc"]
    positive = np.exp(3 * splits["test"].features[NUMERIC_INPUT][:, 0])
    assert test["roc_auc"] == pytest.approx(sk.roc_auc_score(splits["test"].labels, positive))
    # Every baseline produces probabilities: each is headlined by its own roc_auc, the majority by 0.5.
    assert set(document["baselines"]) == {"majority", "linear", "gradient_boosting"}
    for baseline in document["baselines"].values():
        assert baseline["headline"] == baseline["roc_auc"]
    assert document["baselines"]["majority"]["roc_auc"] == 0.5
    # The accuracy of always predicting "well" is near the model's; the headline tells them apart.
    assert document["baselines"]["majority"]["accuracy"] > 0.8
    # The report names the headline and the rule that chose it.
    assert "headline roc_auc = " in evaluation.report
    assert "Chosen by the rule: default for imbalanced classes: roc_auc" in evaluation.report


def test_evaluate_reads_the_class_shares_from_the_training_labels_given():
    table = _imbalanced_table()
    splits, preprocessor = _splits(table)
    del splits["train"]
    balanced = np.array([0, 1] * 50)
    evaluation = evaluate(ScoreModel(), preprocessor, splits, HISTORY, headline="", training_labels=balanced)
    assert evaluation.document["headline"]["definition"] == {"accuracy": 1.0}
    assert (
        evaluate(ScoreModel(), preprocessor, splits, HISTORY, headline="accuracy")
        .document["headline"]["rule"]
        .startswith("configured")
    )


def test_the_gate_scores_production_by_the_candidates_definition():
    table = _imbalanced_table()
    splits, preprocessor = _splits(table)
    test_rows = table.iloc[3 * len(table) // 4 :]
    score = headline_on_table(ScoreModel(), preprocessor, test_rows, definition={"roc_auc": 1.0}, name="v1")
    positive = np.exp(3 * splits["test"].features[NUMERIC_INPUT][:, 0])
    assert score == pytest.approx(sk.roc_auc_score(splits["test"].labels, positive))
    # A production model that does not compute the candidate's metric is not scored: a DataError, which
    # the gate records as why the candidate stays one.
    three = table.assign(y=np.resize(["a", "b", "c"], len(table)))
    preprocessor_of_three = fit(three, Schema(label="y", task="classification", kinds={"x": "numeric"}))
    with pytest.raises(DataError, match="cannot be scored on the candidate's headline: headline uses roc_auc"):
        headline_on_table(ScoreModel(classes=3), preprocessor_of_three, three, definition={"roc_auc": 1.0}, name="v0")
    decision = decide("v2", 0.91, production="v1", production_headline=0.88, margin=0.005, headline_name="roc_auc")
    assert decision.promoted and decision.reason.startswith("gate passed: headline (roc_auc) 0.9100 vs production v1")
