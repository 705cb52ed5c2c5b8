"""Plots a person would rather look at than read: an evaluation's (a night's are night_plots.py).
matplotlib without a display.

Every function takes a path or a binary file object (the reports embed plots from memory).
Red means "look here" in every plot: an alert, a rising validation loss, a drifted night.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import confusion_matrix

ALERT = "#c62828"
OK = "#2e7d32"
WARNING = "#ef6c00"
REJECTED = WARNING
SCORED = "#1f77b4"
REFERENCE = "#9e9e9e"
FEW_IN_BIN = 10  # calibration bins with fewer examples are drawn faint
VERDICT_COLOURS = {"overfitting": ALERT, "diverged": ALERT, "underfitting": WARNING, "fine": OK}

Destination = Path | str | BinaryIO


def learning_curves(history: dict[str, list[float]], diagnosis: dict, path: Destination) -> None:
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, style in (("loss", "-o"), ("val_loss", "-s")):
        if name in history:
            axes.plot(epochs, history[name], style, markersize=3, label=name)
    verdict = diagnosis["diagnosis"]
    if "val_loss" in history and len(history["val_loss"]):
        best = int(np.argmin(history["val_loss"]))
        axes.axvline(best + 1, color="grey", linestyle=":", label=f"best val_loss (epoch {best + 1})")
        evaluated = diagnosis.get("evaluated_epoch")
        if evaluated and evaluated != best + 1 and evaluated < len(epochs):
            axes.axvline(evaluated, color="black", linestyle="--", label=f"weights kept (epoch {evaluated})")
        if verdict == "overfitting":
            # The epochs after the best one: training went on learning the training split only.
            axes.axvspan(best + 1, len(epochs), color=ALERT, alpha=0.1, label="val_loss rising")
        elif diagnosis.get("overfitting_after_epoch"):
            # The same, but early stopping kept the weights from before it: amber, not red.
            after = diagnosis["overfitting_after_epoch"]
            axes.axvspan(after, len(epochs), color=WARNING, alpha=0.1, label="val_loss rising (weights not kept)")
    axes.set(xlabel="epoch", ylabel="loss")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"Learning curves: {verdict}", color=VERDICT_COLOURS.get(verdict, "black"), fontweight="bold")
    axes.text(0.01, -0.22, diagnosis["reason"], transform=axes.transAxes, fontsize=8, wrap=True)
    axes.legend()
    axes.grid(alpha=0.3)
    save_figure(figure, path)


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: list[str], path: Destination) -> None:
    matrix = confusion_matrix(labels, predicted, labels=np.arange(len(classes)))
    size = max(4.0, 0.5 * len(classes) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(matrix, cmap="Blues", vmin=0)
    axes.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xlabel="predicted",
        ylabel="true",
        title=f"Confusion matrix (test, {matrix.sum()} rows)",
    )
    axes.set_xticklabels(classes, rotation=45, ha="right")
    axes.set_yticklabels(classes)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            axes.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if count > threshold else "black",
            )
    figure.colorbar(image, ax=axes, fraction=0.046)
    save_figure(figure, path)


def predicted_vs_actual(targets: np.ndarray, predictions: np.ndarray, path: Destination) -> None:
    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.scatter(targets, predictions, s=8, alpha=0.6)
    if len(targets):
        low, high = float(min(targets.min(), predictions.min())), float(max(targets.max(), predictions.max()))
        axes.plot([low, high], [low, high], color="grey", linestyle=":")
    axes.set(xlabel="actual", ylabel="predicted", title=f"Predicted vs actual (test, {len(targets)} rows)")
    axes.grid(alpha=0.3)
    save_figure(figure, path)


def calibration(confidence: np.ndarray, correct: np.ndarray, path: Destination, *, bins: int = 10) -> None:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with bin counts.

    Args:
        confidence: the top-class probability of each example, in [0, 1].
        correct: whether the top class was the true one.
        bins: equal-width confidence bins, as in `evaluation.expected_calibration_error`.
    """
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    bin_of = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(bin_of, minlength=bins)
    hits = np.bincount(bin_of, weights=correct.astype(float), minlength=bins)
    mean_confidence = np.bincount(bin_of, weights=confidence, minlength=bins)
    filled = counts > 0
    accuracy = np.divide(hits, counts, out=np.zeros(bins), where=filled)
    gap = np.abs(accuracy - np.divide(mean_confidence, counts, out=np.zeros(bins), where=filled))
    ece = float((counts * gap).sum() / max(counts.sum(), 1))
    width = 1.0 / bins
    centres = edges[:-1] + width / 2
    few = filled & (counts < FEW_IN_BIN)
    solid = filled & ~few
    figure, axes = plt.subplots(figsize=(5.5, 5.4))
    axes.bar(centres[solid], accuracy[solid], width=width * 0.9, color=SCORED, alpha=0.8, label="accuracy in bin")
    # A bin of two or three examples says little: drawn faint and hatched, never as a full bar.
    axes.bar(
        centres[few],
        accuracy[few],
        width=width * 0.9,
        color=SCORED,
        alpha=0.2,
        hatch="//",
        edgecolor=SCORED,
        label=f"fewer than {FEW_IN_BIN} examples",
    )
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration", zorder=3)
    # Counts in a band above 1, where no bar and not the diagonal can be.
    for centre, count in zip(centres[filled], counts[filled]):
        axes.text(
            centre,
            1.03,
            f"n={count}",
            ha="center",
            va="bottom",
            fontsize=7,
            color="black" if count >= FEW_IN_BIN else "grey",
        )
    axes.axhline(1.0, color="black", linewidth=0.6)
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1.1),
        xlabel="predicted confidence (top class)",
        ylabel="accuracy",
        title=f"Calibration (test, {int(counts.sum())} rows, ECE {ece:.3f})",
    )
    axes.set_yticks(np.linspace(0, 1, 6))
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=8, frameon=False)
    axes.grid(alpha=0.3)
    save_figure(figure, path)


def natural_key(name: str):
    """Class names in natural order: "2" before "10"."""
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, 0.0, name)


def save_figure(figure, path: Destination, *, layout: bool = True) -> None:
    if layout:
        figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)
