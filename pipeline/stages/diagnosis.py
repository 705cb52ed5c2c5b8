"""The diagnosis of an evaluation: what the loss curves say about the weights evaluated, then
what the baselines and the split's warnings say over them (pipeline/stages/evaluation.py calls it).

Diagnosis names are the contract in DESIGN.md: fine, overfitting, underfitting, diverged, unknown,
below baseline, no better than trivial, unpredictable, split warning.
"""

from __future__ import annotations

import numpy as np

from pipeline.common.metrics import BELOW_BASELINE, NO_BETTER_THAN_TRIVIAL, UNPREDICTABLE

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
