"""Evaluation stage: metrics, per-slice metrics, the headline score and a diagnosis
(pipeline/stages/diagnosis.py).

Metric names are the contract in DESIGN.md: accuracy, balanced_accuracy, precision_macro,
recall_macro, f1_macro, log_loss, ece (and roc_auc for two classes) for classification; mae, rmse,
r2 for regression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as sk

from pipeline.common.metrics import lower_is_better
from pipeline.errors import DataError
from pipeline.stages.diagnosis import diagnose, with_baselines, with_split_warnings
from pipeline.stages.features import SplitArrays, split_arrays
from pipeline.stages.prediction import predict
from pipeline.stages.preprocessor import Preprocessor

DEFAULT_HEADLINE = {"classification": "accuracy", "regression": "r2"}
# Where the majority class holds at least this share of the training labels, always predicting it
# scores an accuracy of that share: an empty headline is then one that majority guessing cannot
# reach (0.5 roc_auc, 1/classes balanced_accuracy), not accuracy.
IMBALANCED_SHARE = 0.7
IMBALANCED_HEADLINE = {"binary": "roc_auc", "multiclass": "balanced_accuracy"}
CALIBRATION_BINS = 10


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """labels: class indices (rows,); probabilities: (rows, classes). Two classes add roc_auc."""
    if len(labels) == 0:
        return {}
    predicted = probabilities.argmax(axis=1)
    classes = np.arange(probabilities.shape[1])
    values = {
        "accuracy": float(sk.accuracy_score(labels, predicted)),
        "balanced_accuracy": balanced_accuracy(labels, predicted),
        "precision_macro": float(sk.precision_score(labels, predicted, average="macro", zero_division=0)),
        "recall_macro": float(sk.recall_score(labels, predicted, average="macro", zero_division=0)),
        "f1_macro": float(sk.f1_score(labels, predicted, average="macro", zero_division=0)),
    }
    if len(classes) == 2:
        values["roc_auc"] = roc_auc(labels, probabilities[:, 1])
    values["log_loss"] = float(sk.log_loss(labels, np.clip(probabilities, 1e-15, 1), labels=classes))
    values["ece"] = expected_calibration_error(labels, probabilities)
    return values


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """The mean recall of the classes the labels hold: always predicting one class of k scores 1/k
    however many rows it holds. (scikit-learn's warns when a prediction names a class no label has.)"""
    return float(np.mean([np.mean(predicted[labels == name] == name) for name in np.unique(labels)]))


def roc_auc(labels: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of the second class's probability; NaN where the rows hold one class only (there is
    no pair to rank), as r2 is NaN for one row."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(sk.roc_auc_score(labels, positive))


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted by size."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    bin_of = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        members = bin_of == index
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def regression_metrics(targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    if len(targets) == 0:
        return {}
    return {
        "mae": float(sk.mean_absolute_error(targets, predictions)),
        "rmse": float(np.sqrt(sk.mean_squared_error(targets, predictions))),
        "r2": float(sk.r2_score(targets, predictions)) if len(targets) > 1 else float("nan"),
    }


def task_metrics(task: str, labels: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    if task == "classification":
        return classification_metrics(labels, outputs)
    return regression_metrics(labels, outputs)


def slice_metrics(task: str, labels: np.ndarray, outputs: np.ndarray, slices: np.ndarray) -> dict[str, dict]:
    """Metrics per value of the slice column (missing values form the slice "(missing)")."""
    names = np.array(["(missing)" if value is None or value != value else str(value) for value in slices])
    return {
        name: {"rows": int((names == name).sum()), **task_metrics(task, labels[names == name], outputs[names == name])}
        for name in sorted(set(names))
    }


def parse_headline(text: str, task: str) -> dict[str, float]:
    """`accuracy` or `f1_macro:0.7, accuracy:0.3` -> weights. Lower-is-better metrics count negatively.

    Empty text gives the task's plain default; `resolve_headline` applies the imbalance rule.
    """
    text = text.strip() or DEFAULT_HEADLINE[task]
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        weights[name.strip()] = float(weight) if weight else 1.0
    return weights


def resolve_headline(
    text: str, task: str, labels: np.ndarray | None = None, classes: Sequence[str] = ()
) -> dict[str, object]:
    """The headline's definition (metric -> weight) and the rule that chose it, for metrics.json.

    A configured headline always wins. Left empty, it is accuracy (classification) or r2, except
    where one class holds at least IMBALANCED_SHARE of `labels`: then roc_auc for two classes,
    balanced_accuracy for more, which majority guessing cannot push up.

    Args:
        labels: the training split's class indices (-1, unknown, is left out).
        classes: the class names, in the order of the indices.

    Returns:
        {"definition": weights, "rule": why this definition}.
    """
    if text.strip():
        return {
            "definition": parse_headline(text, task),
            "rule": f"configured: [EvaluateModel] headline = {text.strip()}",
        }
    plain = {"definition": parse_headline("", task), "rule": f"default for {task}: {DEFAULT_HEADLINE[task]}"}
    known = labels[labels >= 0] if labels is not None and task == "classification" else np.empty(0, int)
    if not len(known) or not len(classes):
        return plain
    counts = np.bincount(known, minlength=len(classes))
    largest = int(counts.argmax())
    share = counts[largest] / counts.sum()
    held = f"class {classes[largest]!r} holds {share:.1%} of the {counts.sum()} training labels"
    if share < IMBALANCED_SHARE:
        return {**plain, "rule": f"{plain['rule']}, as the largest {held} (under {IMBALANCED_SHARE:.0%})"}
    name = IMBALANCED_HEADLINE["binary" if len(classes) == 2 else "multiclass"]
    return {
        "definition": {name: 1.0},
        "rule": f"default for imbalanced classes: {name}, not accuracy, as {held} (at least {IMBALANCED_SHARE:.0%}) "
        "and always predicting it scores that accuracy",
    }


def headline_score(values: dict[str, float], weights: dict[str, float]) -> float:
    """One number, higher is better, to rank models and gate promotion."""
    missing = [name for name in weights if name not in values]
    if missing:
        raise ValueError(
            f"headline uses {', '.join(missing)}, which this task does not compute; "
            f"choose from {', '.join(sorted(values))}"
        )
    return float(sum((-1 if lower_is_better(name) else 1) * weight * values[name] for name, weight in weights.items()))


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation found, for the evaluation folder (pipeline/artifacts/evaluation.py)."""

    document: dict  # splits' metrics, slices, headline and diagnosis (metrics.json)
    test_predictions: pd.DataFrame  # one row per test example, worst first
    plots: dict[str, bytes]  # file name -> PNG
    report: str  # the self-contained HTML page


def evaluate(
    model,
    preprocessor: Preprocessor,
    splits: dict[str, SplitArrays],
    history: dict[str, list[float]],
    *,
    headline: str,
    slices: dict[str, object] | None = None,
    examples: pd.DataFrame | None = None,
    split_checks: dict | None = None,
    baseline_rows: int = 0,
    training_labels: np.ndarray | None = None,
    evaluated_epoch: int | None = None,
) -> Evaluation:
    """Score the validation and test splits; compute the headline, the diagnosis, plots and report.

    Args:
        model: the trained Keras model.
        splits: the features stage's "validation" and "test" arrays.
        history: the training history, for the diagnosis and the learning curves.
        headline: the headline definition, e.g. "accuracy" or "f1_macro:0.7, accuracy:0.3".
        slices: example id -> slice value, for per-slice test metrics.
        examples: the validated table (example_id and feature columns), for the report to show
            the worst test examples' images, text or values; None shows their ids only.
        split_checks: the split's checks.json: its warnings and near-duplicates are reported,
            and a warning turns a "fine" diagnosis into "split warning".
        baseline_rows: with a "train" split and `examples`, the baselines are fitted on at most
            this many training rows (pipeline/stages/baselines.py); 0 fits none.
        training_labels: the training split's labels, whose class shares decide an empty
            headline (`resolve_headline`); None: the "train" split's, else the test split's.
        evaluated_epoch: the epoch whose weights the model holds (early stopping restores the
            best one), for the diagnosis; None: the last.
    """
    from pipeline.rendering.reports.evaluation import evaluation_plots, evaluation_report

    task = preprocessor.task
    document = {"task": task, "splits": {}, "slices": {}}
    outputs = {split: predict(model, splits[split].features, preprocessor) for split in ("validation", "test")}
    for split, scored in outputs.items():
        arrays = splits[split]
        metrics = task_metrics(task, arrays.labels[arrays.known], scored[arrays.known])
        document["splits"][split] = {"rows": int(len(arrays.labels)), **metrics}
    known = splits["test"].known
    labels, outputs, ids = splits["test"].labels[known], outputs["test"][known], splits["test"].example_ids[known]
    if slices:
        document["slices"] = slice_metrics(task, labels, outputs, np.array([slices.get(i) for i in ids], dtype=object))
    if training_labels is None:
        training_labels = splits["train"].labels if "train" in splits else labels
    chosen = resolve_headline(headline, task, training_labels, preprocessor.classes)
    weights = chosen["definition"]
    document["headline"] = {**chosen, "value": headline_score(document["splits"]["test"], weights)}
    if baseline_rows and "train" in splits and examples is not None:
        document["baselines"] = baseline_metrics(splits, preprocessor, examples, weights, max_rows=baseline_rows)
    split_checks = split_checks or {}
    document["split"] = {
        "warnings": list(split_checks.get("warnings", [])),
        "near_duplicates": split_checks.get("near_duplicates"),
    }
    curves = diagnose(history, evaluated_epoch=evaluated_epoch)
    judged = with_baselines(
        curves,
        document["splits"]["test"],
        document["headline"]["value"],
        document.get("baselines", {}),
        rows=int(splits["test"].known.sum()),
        definition=weights,
    )
    document["diagnosis"] = with_split_warnings(judged, document["split"]["warnings"])
    table = _test_predictions(labels, outputs, ids, preprocessor)
    plots = evaluation_plots(document, history, table, preprocessor.classes)
    report = evaluation_report(
        document, history, preprocessor=preprocessor, test_predictions=table, examples=examples, plots=plots
    )
    return Evaluation(document, table, plots, report)


def baseline_metrics(
    splits: dict[str, SplitArrays], preprocessor: Preprocessor, examples: pd.DataFrame, weights: dict, *, max_rows: int
) -> dict[str, dict]:
    """Each baseline's test metrics and headline, with how many training rows it was fitted on."""
    from pipeline.stages.baselines import DESCRIPTIONS, fit_baselines

    test = splits["test"]
    found = {}
    validation = splits.get("validation")
    for baseline in fit_baselines(
        splits["train"], test, preprocessor, examples, validation=validation, max_rows=max_rows
    ):
        metrics = task_metrics(preprocessor.task, test.labels[test.known], baseline.outputs[test.known])
        found[baseline.name] = {
            **metrics,
            "headline": headline_score(metrics, weights),
            "description": DESCRIPTIONS[baseline.name],
            "fitted_rows": baseline.fitted_rows,
            "sampled": baseline.sampled,
            "seconds": round(baseline.seconds, 2),
        }
    return found


def split_metrics(model, arrays: SplitArrays, preprocessor: Preprocessor) -> dict[str, float]:
    """A trained model's metrics on one split (TrainModel records the validation split's, and
    tuning ranks its trials by them)."""
    outputs = predict(model, arrays.features, preprocessor)
    return task_metrics(preprocessor.task, arrays.labels[arrays.known], outputs[arrays.known])


def _test_predictions(labels, outputs, ids, preprocessor: Preprocessor) -> pd.DataFrame:
    """One row per test example, worst first: what a person opens to see what went wrong."""
    if preprocessor.is_classification:
        classes = np.asarray(preprocessor.classes)
        table = pd.DataFrame(
            {
                "example_id": ids,
                "label": classes[labels],
                "prediction": classes[outputs.argmax(axis=1)],
                "score": outputs.max(axis=1),
                "loss": -np.log(np.clip(outputs[np.arange(len(labels)), labels], 1e-15, 1)),
            }
        )
    else:
        table = pd.DataFrame(
            {"example_id": ids, "label": labels, "prediction": outputs, "loss": np.abs(outputs - labels)}
        )
    return table.sort_values("loss", ascending=False, ignore_index=True)


def headline_on_table(
    model, preprocessor: Preprocessor, table: pd.DataFrame, *, definition: dict[str, float], name: str
) -> float:
    """A model's headline score on labeled rows, through its own preprocessor.

    The registration gate uses it to score the production model on the candidate's test split
    with the candidate's headline definition (metrics.json), so both scores come from the same
    rows and the same metrics whatever headline production was evaluated on.

    Raises:
        DataError: the table lacks columns the model (`name` in the message) needs, or the model
            does not compute a metric of the definition (roc_auc of a model of three classes).
    """
    needed = [*preprocessor.schema.kinds, preprocessor.label]
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise DataError(f"model {name} needs columns the test split lacks: {', '.join(missing)}")
    values = split_metrics(model, split_arrays(table, preprocessor), preprocessor)
    try:
        return headline_score(values, definition)
    except ValueError as error:
        raise DataError(f"model {name} cannot be scored on the candidate's headline: {error}") from None
