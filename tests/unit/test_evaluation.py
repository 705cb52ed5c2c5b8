"""Unit tests for pipeline/stages/evaluation.py and pipeline/rendering/plots.py: metrics, headline, diagnosis, plots."""

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from pipeline.rendering import plots
from pipeline.stages.diagnosis import diagnose, weights_epoch
from pipeline.stages.evaluation import (
    classification_metrics,
    expected_calibration_error,
    headline_score,
    parse_headline,
    regression_metrics,
    slice_metrics,
    task_metrics,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Five examples, three classes; predictions 0, 1, 1, 2, 0 against labels 0, 1, 2, 2, 1.
LABELS = np.array([0, 1, 2, 2, 1])
PROBABILITIES = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.6, 0.3], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])


# --- classification ----------------------------------------------------------------------------


def test_classification_metrics_on_a_hand_computed_example():
    values = classification_metrics(LABELS, PROBABILITIES)
    assert set(values) == {
        "accuracy",
        "balanced_accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "log_loss",
        "ece",
    }  # no roc_auc for three classes
    assert values["accuracy"] == pytest.approx(3 / 5)
    # Recall of class 0: 1/1, class 1: 1/2, class 2: 1/2.
    assert values["balanced_accuracy"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert values["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(LABELS, PROBABILITIES.argmax(1)))
    # Per class: precision 1/2, 1/2, 1; recall 1, 1/2, 1/2.
    assert values["precision_macro"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert values["recall_macro"] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert values["f1_macro"] == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)
    assert values["f1_macro"] == pytest.approx(sk.f1_score(LABELS, PROBABILITIES.argmax(1), average="macro"))
    expected_log_loss = -np.mean(np.log([0.8, 0.7, 0.3, 0.7, 0.4]))
    assert values["log_loss"] == pytest.approx(expected_log_loss)
    assert all(isinstance(value, float) for value in values.values())


def test_two_classes_record_roc_auc_of_the_second_class_probability():
    labels = np.array([0, 0, 0, 0, 1, 1])
    positive = np.array([0.1, 0.3, 0.6, 0.2, 0.4, 0.9])  # of 8 (negative, positive) pairs, 0.6 > 0.4 only
    values = classification_metrics(labels, np.stack([1 - positive, positive], axis=1))
    assert values["roc_auc"] == pytest.approx(sk.roc_auc_score(labels, positive)) == pytest.approx(7 / 8)


def test_roc_auc_of_rows_of_one_class_is_nan_like_r2_of_one_row():
    values = classification_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]))
    assert math.isnan(values["roc_auc"]) and values["accuracy"] == 0.5


def test_a_majority_guess_scores_chance_on_balanced_accuracy_and_roc_auc():
    labels = np.array([0] * 9 + [1])
    always_zero = np.tile([0.9, 0.1], (10, 1))
    values = classification_metrics(labels, always_zero)
    assert values["accuracy"] == pytest.approx(0.9)
    assert values["balanced_accuracy"] == pytest.approx(0.5) and values["roc_auc"] == pytest.approx(0.5)


def test_log_loss_is_finite_for_a_zero_probability_on_the_true_class():
    values = classification_metrics(np.array([0, 1]), np.array([[0.0, 1.0], [0.0, 1.0]]))
    assert math.isfinite(values["log_loss"]) and values["log_loss"] > 10


def test_log_loss_counts_classes_absent_from_the_labels():
    # Only class 0 present among labels; three columns of probabilities must still be accepted.
    values = classification_metrics(np.array([0, 0]), np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1]]))
    assert values["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.6])))


def test_ece_is_zero_for_confident_correct_one_hot_predictions():
    labels = np.array([0, 1, 2, 1])
    one_hot = np.eye(3)[labels]
    assert expected_calibration_error(labels, one_hot) == 0.0
    assert classification_metrics(labels, one_hot)["ece"] == 0.0
    assert classification_metrics(labels, one_hot)["accuracy"] == 1.0


def test_ece_of_a_hand_computed_example():
    # Confidence 0.8 each, half of them right: gap 0.3 in one bin.
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.8, 0.2]] * 4)
    assert expected_calibration_error(labels, probabilities) == pytest.approx(0.3)
    # Confident and always wrong: gap 1.
    assert expected_calibration_error(np.array([1, 1]), np.array([[1.0, 0.0]] * 2)) == pytest.approx(1.0)


def test_empty_labels_give_no_metrics():
    assert classification_metrics(np.array([], dtype=int), np.zeros((0, 3))) == {}
    assert regression_metrics(np.array([]), np.array([])) == {}


# --- regression --------------------------------------------------------------------------------


def test_regression_metrics_on_a_hand_example():
    targets = np.array([1.0, 2.0, 3.0, 4.0])
    predictions = np.array([1.0, 3.0, 2.0, 4.0])
    values = regression_metrics(targets, predictions)
    assert values["mae"] == pytest.approx(0.5)
    assert values["rmse"] == pytest.approx(math.sqrt(0.5))
    assert values["r2"] == pytest.approx(1 - 2.0 / 5.0)  # residual 2, total 5


def test_regression_r2_of_one_row_is_nan():
    assert math.isnan(regression_metrics(np.array([1.0]), np.array([2.0]))["r2"])


def test_task_metrics_dispatches_on_task():
    assert "accuracy" in task_metrics("classification", LABELS, PROBABILITIES)
    assert "rmse" in task_metrics("regression", np.array([1.0, 2.0]), np.array([1.0, 2.5]))


# --- slices ------------------------------------------------------------------------------------


def test_slice_metrics_per_slice_with_a_missing_slice():
    slices = np.array(["north", "north", None, "south", float("nan")], dtype=object)
    values = slice_metrics("classification", LABELS, PROBABILITIES, slices)
    assert list(values) == ["(missing)", "north", "south"]
    assert values["north"]["rows"] == 2 and values["north"]["accuracy"] == 1.0  # rows 0 and 1
    assert values["(missing)"]["rows"] == 2 and values["(missing)"]["accuracy"] == 0.0  # rows 2 and 4
    assert values["south"]["rows"] == 1 and values["south"]["accuracy"] == 1.0


def test_slice_metrics_for_regression():
    targets = np.array([1.0, 2.0, 3.0, 4.0])
    predictions = np.array([1.0, 2.0, 5.0, 4.0])
    values = slice_metrics("regression", targets, predictions, np.array([1, 1, 2, 2], dtype=object))
    assert values["1"]["mae"] == 0.0 and values["2"]["mae"] == pytest.approx(1.0)


# --- headline ----------------------------------------------------------------------------------


def test_parse_headline():
    assert parse_headline("", "classification") == {"accuracy": 1.0}
    assert parse_headline("  ", "regression") == {"r2": 1.0}
    assert parse_headline("f1_macro:0.7, accuracy:0.3", "classification") == {"f1_macro": 0.7, "accuracy": 0.3}
    assert parse_headline("mae", "regression") == {"mae": 1.0}


def test_headline_score_weights_and_lower_is_better_counts_negatively():
    values = {"accuracy": 0.9, "f1_macro": 0.8, "log_loss": 0.5}
    assert headline_score(values, {"accuracy": 1.0}) == pytest.approx(0.9)
    assert headline_score(values, {"f1_macro": 0.7, "accuracy": 0.3}) == pytest.approx(0.7 * 0.8 + 0.3 * 0.9)
    assert headline_score(values, {"log_loss": 1.0}) == pytest.approx(-0.5)
    # A lower loss must rank higher.
    assert headline_score({"mae": 1.0}, {"mae": 1.0}) > headline_score({"mae": 2.0}, {"mae": 1.0})


def test_headline_score_unknown_metric_lists_the_choices():
    values = {"mae": 1.0, "rmse": 2.0, "r2": 0.5}
    with pytest.raises(ValueError, match=r"headline uses accuracy.*choose from mae, r2, rmse"):
        headline_score(values, parse_headline("accuracy", "regression"))


# --- diagnosis ---------------------------------------------------------------------------------


def test_diagnose_overfitting():
    history = {"loss": [1.0, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05], "val_loss": [1.0, 0.7, 0.5, 0.6, 0.7, 0.8, 0.9]}
    verdict = diagnose(history)
    assert verdict["diagnosis"] == "overfitting"
    assert "epoch 3" in verdict["reason"]


def test_diagnose_overfitting_after_the_kept_epoch_is_not_an_overfitted_model():
    # The same curves, but early stopping put back epoch 3's weights: those are what was evaluated.
    history = {"loss": [1.0, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05], "val_loss": [1.0, 0.7, 0.5, 0.6, 0.7, 0.8, 0.9]}
    verdict = diagnose(history, evaluated_epoch=3)
    assert verdict["diagnosis"] == "fine"
    assert verdict["reason"].startswith("overfitting after epoch 3: val_loss rose from 0.5000 to 0.9000 by epoch 7")
    assert "the weights of epoch 3 of 7 were kept" in verdict["reason"]
    assert (verdict["evaluated_epoch"], verdict["epochs"], verdict["overfitting_after_epoch"]) == (3, 7, 3)
    # Without early stopping the last epoch's weights are evaluated, and they are overfitted.
    assert diagnose(history, evaluated_epoch=7)["diagnosis"] == "overfitting"
    assert "whose weights were evaluated" in diagnose(history, evaluated_epoch=7)["reason"]


def test_diagnose_overfitting_when_the_kept_epoch_itself_came_after_the_rise():
    # A resumed training: early stopping only saw epochs 5 to 7 and kept epoch 6, past the best (3).
    history = {"loss": [1.0, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05], "val_loss": [1.0, 0.7, 0.5, 0.6, 0.7, 0.8, 0.9]}
    verdict = diagnose(history, evaluated_epoch=6)
    assert verdict["diagnosis"] == "overfitting"
    assert "lowest at epoch 3" in verdict["reason"] and "rose to 0.8000 by epoch 6 of 7" in verdict["reason"]


def test_diagnose_names_a_widening_gap_that_the_10_percent_rule_missed():
    # The training loss falls from 0.5 to 0.2 while val_loss creeps up 6.7% from its best: the gap
    # between them grows from 0.10 to 0.44. The old rule (a 10% rise) called this "settled".
    history = {"loss": [1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2], "val_loss": [1.0, 0.75, 0.6, 0.61, 0.62, 0.63, 0.64]}
    kept = diagnose(history, evaluated_epoch=3)
    assert kept["diagnosis"] == "fine" and kept["reason"].startswith("overfitting after epoch 3")
    assert "settled" not in kept["reason"]
    assert diagnose(history)["diagnosis"] == "overfitting"  # the last epoch's weights: overfitted


def test_diagnose_says_which_weights_were_kept_and_compares_with_the_last_epoch():
    history = {"loss": [1.0, 0.6, 0.4, 0.3, 0.25, 0.22, 0.2], "val_loss": [1.05, 0.7, 0.5, 0.42, 0.40, 0.39, 0.395]}
    verdict = diagnose(history, evaluated_epoch=6)
    assert verdict["diagnosis"] == "fine" and "overfitting_after_epoch" not in verdict
    assert verdict["reason"].endswith(
        "the weights of epoch 6 of 7 were kept (val_loss 0.3900 against 0.3950 at the last epoch)"
    )


def test_weights_epoch_from_the_training_record():
    history = {"loss": [1.0, 0.5, 0.4, 0.3], "val_loss": [1.0, 0.6, float("nan"), 0.7]}
    assert weights_epoch({"restored_epoch": 3, "config": {"patience": 5}}, history) == 3
    assert weights_epoch({"restored_epoch": None, "config": {"patience": 5}}, history) is None
    # training.json from before `restored_epoch`: Keras restored the best finite val_loss.
    assert weights_epoch({"config": {"patience": 5}, "resumed_from_epoch": 0}, history) == 2
    assert weights_epoch({"config": {"patience": 5}, "resumed_from_epoch": 2}, history) == 4  # resumed
    assert weights_epoch({"config": {"patience": 0}}, history) is None  # no early stopping
    assert weights_epoch({"config": {"patience": 5, "debug": True}}, history) is None


def test_diagnose_underfitting_flat_training_loss():
    history = {"loss": [1.00, 0.99, 0.98, 0.97, 0.97], "val_loss": [1.01, 1.00, 0.99, 0.99, 0.99]}
    verdict = diagnose(history)
    assert verdict["diagnosis"] == "underfitting"
    assert "fell only" in verdict["reason"]


def test_diagnose_underfitting_still_falling_steeply():
    history = {"loss": [2.0, 1.5, 1.0, 0.7], "val_loss": [2.0, 1.6, 1.2, 0.9]}
    verdict = diagnose(history)
    assert verdict["diagnosis"] == "underfitting"
    assert "train longer" in verdict["reason"]


def test_diagnose_fine_for_a_converging_history():
    history = {"loss": [1.0, 0.6, 0.4, 0.3, 0.25, 0.22, 0.2], "val_loss": [1.05, 0.7, 0.5, 0.42, 0.40, 0.39, 0.39]}
    assert diagnose(history)["diagnosis"] == "fine"


@pytest.mark.parametrize("history", [{"loss": [1.0], "val_loss": [1.0]}, {"loss": [1.0, 0.5]}, {}])
def test_diagnose_unknown_with_too_little_history(history):
    assert diagnose(history) == {"diagnosis": "unknown", "reason": "fewer than two epochs of history"}


# --- plots -------------------------------------------------------------------------------------


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1024


def test_learning_curves_plot(tmp_path):
    history = {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.7, 0.6]}
    plots.learning_curves(history, diagnose(history), tmp_path / "curves.png")
    _assert_png(tmp_path / "curves.png")


def test_learning_curves_plot_with_kept_weights_and_overfitting_after_them(tmp_path):
    history = {"loss": [1.0, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05], "val_loss": [1.0, 0.7, 0.5, 0.6, 0.7, 0.8, 0.9]}
    plots.learning_curves(history, diagnose(history, evaluated_epoch=3), tmp_path / "curves.png")
    _assert_png(tmp_path / "curves.png")


def test_learning_curves_plot_with_unknown_diagnosis(tmp_path):
    plots.learning_curves({"loss": [1.0]}, diagnose({"loss": [1.0]}), tmp_path / "curves.png")
    _assert_png(tmp_path / "curves.png")


def test_confusion_plot(tmp_path):
    plots.confusion(LABELS, PROBABILITIES.argmax(axis=1), ["cat", "dog", "bird"], tmp_path / "confusion.png")
    _assert_png(tmp_path / "confusion.png")


def test_predicted_vs_actual_plot(tmp_path):
    targets = np.array([1.0, 2.0, 3.0, 4.0])
    plots.predicted_vs_actual(targets, targets + 0.3, tmp_path / "scatter.png")
    _assert_png(tmp_path / "scatter.png")


def test_diagnose_does_not_call_a_diverged_history_fine():
    nan = float("nan")
    verdict = diagnose({"loss": [1.0, 0.5, nan], "val_loss": [1.0, 0.6, nan]})
    assert verdict["diagnosis"] != "fine"


def test_diagnose_ignores_small_wobbles_of_a_tiny_loss():
    # A good run: val_loss bottoms at 0.066 and ends at 0.075 after early stopping's patience.
    loss = [2.2, 0.6, 0.2, 0.1, 0.06, 0.04, 0.03, 0.02, 0.015, 0.012, 0.01]
    validation = [1.5, 0.4, 0.15, 0.09, 0.07, 0.066, 0.068, 0.07, 0.072, 0.074, 0.075]
    assert diagnose({"loss": loss, "val_loss": validation})["diagnosis"] == "fine"
    still_falling = {"loss": loss, "val_loss": validation[:5] + [0.06, 0.055, 0.05, 0.046, 0.043, 0.035]}
    assert diagnose(still_falling)["diagnosis"] == "fine"
