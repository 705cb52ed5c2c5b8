"""Evaluation stage: metrics, per-slice metrics, the headline score and a diagnosis.

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

from pipeline.common.metrics import BELOW_BASELINE, NO_BETTER_THAN_TRIVIAL, UNPREDICTABLE, lower_is_better
from pipeline.errors import DataError
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


SPLIT_WARNING = "split warning"  # a diagnosis: the curves look fine, the split does not
BASELINE_MARGIN = 0.01  # within this (of the best headline, at least 0.01) a model only matches a baseline
UNPREDICTABLE_R2 = 0.05  # below this r2 for every model, the target looks unpredictable from the features
# An accuracy above the majority class's that chance alone gives this often or more is no gain.
CHANCE_LEVEL = 0.05


# Overfitting: val_loss rose this share above its lowest (and 5% of the first training loss), or
# rose beyond noise (2% of its lowest, 1% of the first training loss) while the gap between it and
# the falling training loss widened by GAP_WIDENING of the first training loss.
OVERFITTING_RISE = 0.1
NOISE_RISE = 0.02
GAP_WIDENING = 0.1


def diagnose(history: dict[str, list[float]], *, evaluated_epoch: int | None = None) -> dict:
    """Read the loss curves: "overfitting", "underfitting" or "fine", with the reason.

    The verdict is about the weights evaluated: early stopping keeps the best epoch's
    (pipeline/stages/training.py), so training that overfitted after that epoch left a model
    that did not. The reason says so ("overfitting after epoch 7; the weights of epoch 7 of 12
    were kept") and the verdict is "overfitting" only where the evaluated epoch itself comes
    after val_loss bottomed out and rose while the training loss kept falling (no weights
    restored, or a resumed training whose restored epoch was not the best). Underfitting: the
    training loss barely fell, or both losses were still falling steeply when training stopped.

    Args:
        evaluated_epoch: the epoch (from 1) whose weights the model holds; None: the last.

    Returns:
        "diagnosis" and "reason"; from two epochs of history also "evaluated_epoch", "epochs"
        and, where training overfitted after some epoch, "overfitting_after_epoch".
    """
    loss, validation = history.get("loss", []), history.get("val_loss", [])
    if len(loss) < 2 or len(validation) < 2:
        return {"diagnosis": "unknown", "reason": "fewer than two epochs of history"}
    epochs = min(len(loss), len(validation))
    loss, validation = list(loss[:epochs]), list(validation[:epochs])
    evaluated = min(max(evaluated_epoch or epochs, 1), epochs)
    facts: dict = {"evaluated_epoch": evaluated, "epochs": epochs}
    kept = _kept(validation, evaluated)
    not_finite = [epoch + 1 for epoch, values in enumerate(zip(loss, validation)) if not np.isfinite(values).all()]
    if not_finite:
        return {
            "diagnosis": "diverged",
            "reason": f"the loss is not finite from epoch {not_finite[0]}: "
            f"lower the learning rate or check the inputs for extreme values{kept}",
            **facts,
        }
    # Changes are judged against the first training loss too: once a loss is tiny, a 10% wobble
    # of it is noise, not a trend (a val_loss of 0.066 that ends at 0.075 is not overfitting).
    scale = max(abs(loss[0]), 1e-12)
    after = _overfitting_after(loss, validation, scale)
    if after is not None:
        facts["overfitting_after_epoch"] = after + 1
    own = _overfitting_after(loss[:evaluated], validation[:evaluated], scale)
    if own is not None:
        which = "the last epoch" if evaluated == epochs else f"epoch {evaluated} of {epochs}"
        return {
            "diagnosis": "overfitting",
            "reason": f"val_loss was lowest at epoch {own + 1} ({validation[own]:.4f}) and rose to "
            f"{validation[evaluated - 1]:.4f} by {which}, whose weights were evaluated, while the training loss "
            f"kept falling ({loss[own]:.4f} to {loss[evaluated - 1]:.4f})",
            **facts,
        }
    best = int(np.argmin(validation))
    drop = (loss[0] - loss[-1]) / scale
    if drop < 0.2:
        return {
            "diagnosis": "underfitting",
            "reason": f"the training loss fell only {drop:.0%} ({loss[0]:.4f} to {loss[-1]:.4f}){kept}",
            **facts,
        }
    recent = validation[-2] - validation[-1]
    if best == epochs - 1 and recent > 0.05 * abs(validation[-2]) and recent > 0.01 * scale:
        return {
            "diagnosis": "underfitting",
            "reason": f"val_loss was still falling ({validation[-2]:.4f} to {validation[-1]:.4f} in the "
            "last epoch): train longer",
            **facts,
        }
    if after is not None:  # the evaluated epoch came before it: early stopping kept it
        reason = (
            f"overfitting after epoch {after + 1}: val_loss rose from {validation[after]:.4f} to "
            f"{validation[-1]:.4f} by epoch {epochs} while the training loss fell from {loss[after]:.4f} to "
            f"{loss[-1]:.4f}; the weights of epoch {evaluated} of {epochs} were kept"
        )
        return {"diagnosis": "fine", "reason": reason, **facts}
    return {
        "diagnosis": "fine",
        "reason": f"val_loss settled at {validation[best]:.4f} by epoch {best + 1} (training loss {loss[best]:.4f})"
        f"{kept}",
        **facts,
    }


def weights_epoch(training: dict, history: dict[str, list[float]]) -> int | None:
    """The epoch (from 1) whose weights a trained model holds, from its training.json; None: the last.

    training.json records `restored_epoch`. A model trained before it did was restored all the
    same when it had early stopping (Keras puts back the best val_loss of the epochs the last
    process ran, a NaN never being the best), so that epoch is read from the history.
    """
    if "restored_epoch" in training:
        return training["restored_epoch"]
    config = training.get("config", {})
    if config.get("patience", 0) <= 0 or config.get("debug"):
        return None
    start = int(training.get("resumed_from_epoch") or 0)
    validation = np.asarray(history.get("val_loss", [])[start:], dtype=float)
    if not len(validation):
        return None
    return start + int(np.argmin(np.where(np.isnan(validation), np.inf, validation))) + 1


def _overfitting_after(loss: list[float], validation: list[float], scale: float) -> int | None:
    """The epoch (from 0) after which val_loss rose while the training loss fell, or None.

    At least two epochs must follow the lowest val_loss: one higher value is noise. `scale` is
    the first training loss, the measure of what a change is worth.
    """
    best = int(np.argmin(validation))
    if best >= len(validation) - 2 or loss[-1] >= loss[best]:
        return None
    rise = validation[-1] - validation[best]
    risen = rise > OVERFITTING_RISE * abs(validation[best]) and rise > 0.05 * scale
    widening = (validation[-1] - loss[-1]) - (validation[best] - loss[best])
    beyond_noise = rise > NOISE_RISE * abs(validation[best]) and rise > 0.01 * scale
    return best if risen or (beyond_noise and widening > GAP_WIDENING * scale) else None


def _kept(validation: list[float], evaluated: int) -> str:
    """The reason's note on restored weights: which epoch of how many, its val_loss and the last's."""
    epochs = len(validation)
    if evaluated == epochs:
        return ""
    return (
        f"; the weights of epoch {evaluated} of {epochs} were kept (val_loss {validation[evaluated - 1]:.4f} "
        f"against {validation[-1]:.4f} at the last epoch)"
    )


def with_baselines(
    diagnosis: dict,
    model: dict[str, float],
    headline: float,
    baselines: dict[str, dict],
    *,
    rows: int,
    definition: dict[str, float],
) -> dict:
    """The diagnosis, told what the baselines scored on the same test rows.

    A model no better than the trivial predictor, or below a baseline by more than
    BASELINE_MARGIN (of the best baseline's headline, at least 0.01), is diagnosed so whatever
    its curves say (they stay under "learning_curves"); a regression target no model explains
    is "unpredictable", not "underfitting". Baselines whose headline is not a number are left out.

    Args:
        model: the model's test metrics; headline: its test headline; definition: the headline's
            weights (an accuracy headline is judged against the majority class by a binomial test).
        baselines: name -> the baseline's test metrics with its "headline" (metrics.json).
        rows: the test rows the metrics were computed on (known labels).
    """
    baselines = {name: found for name, found in baselines.items() if np.isfinite(found["headline"])}
    if not baselines or diagnosis["diagnosis"] == "diverged" or not np.isfinite(headline):
        return diagnosis
    trivial_name = next((name for name in baselines if name in ("majority", "mean")), None)
    best_name = max(baselines, key=lambda name: baselines[name]["headline"])
    best = baselines[best_name]["headline"]
    scores = [model.get("r2"), *(baseline.get("r2") for baseline in baselines.values())]
    if "r2" in model and all(score is not None and score < UNPREDICTABLE_R2 for score in scores):
        verdict = UNPREDICTABLE
        reason = (
            f"no model beats the mean: the target may not be predictable from these features "
            f"(r2 {model['r2']:.3f}; best baseline, {best_name}, {baselines[best_name]['r2']:.3f})"
        )
    elif trivial_name and (why := _no_better_than_trivial(model, headline, baselines[trivial_name], rows, definition)):
        verdict = NO_BETTER_THAN_TRIVIAL
        what = "always predicting the majority class" if trivial_name == "majority" else "always predicting the mean"
        reason = f"no better than {what} ({why})"
    elif best - headline > _margin(best):
        verdict = BELOW_BASELINE
        reason = f"below the {best_name} baseline (headline {headline:.3f} vs {best:.3f})"
    else:
        note = f"beats or matches every baseline (best: {best_name}, {best:.3f})"
        return {**diagnosis, "reason": f"{diagnosis['reason']}; {note}"}
    return {"diagnosis": verdict, "reason": f"{reason}; {diagnosis['reason']}", "learning_curves": diagnosis}


def _margin(best: float) -> float:
    """Headline points within which a model only matches a baseline: 0.01 of an accuracy or an
    r2, 1% of a headline in the target's units (a mean absolute error of 50 gives 0.5)."""
    return BASELINE_MARGIN * max(1.0, abs(best))


def _no_better_than_trivial(
    model: dict[str, float], headline: float, trivial: dict, rows: int, definition: dict
) -> str:
    """Why the model is no better than the trivial baseline, or "" when it is better.

    An accuracy headline is judged by a binomial test against the majority class's share of
    the test rows: 0.449 against 0.416 on 332 rows is what guessing gives one time in eight.
    Any other headline must beat the trivial one's by the margin.
    """
    if definition == {"accuracy": 1.0} and rows:
        from scipy.stats import binomtest

        share = min(max(trivial["accuracy"], 1e-9), 1 - 1e-9)
        chance = binomtest(round(model["accuracy"] * rows), rows, share, alternative="greater").pvalue
        if chance <= CHANCE_LEVEL:
            return ""
        return (
            f"accuracy {model['accuracy']:.3f} vs {trivial['accuracy']:.3f} on {rows} test rows, "
            f"a gain chance alone gives {chance:.0%} of the time"
        )
    if headline <= trivial["headline"] + _margin(trivial["headline"]):
        return f"headline {headline:.3f} vs {trivial['headline']:.3f}"
    return ""


def with_split_warnings(diagnosis: dict, warnings: list[str]) -> dict:
    """The diagnosis, told that the split cannot be trusted: "fine" becomes "split warning".

    The learning curves' own reading stays under "learning_curves" (their plot shows it).
    """
    if not warnings:
        return diagnosis
    more = f" (and {len(warnings) - 1} more split warnings)" if len(warnings) > 1 else ""
    note = f"the split cannot be trusted: {warnings[0]}{more}"
    verdict = SPLIT_WARNING if diagnosis["diagnosis"] == "fine" else diagnosis["diagnosis"]
    curves = diagnosis.get("learning_curves", diagnosis)
    return {"diagnosis": verdict, "reason": f"{note}; {diagnosis['reason']}", "learning_curves": curves}


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
