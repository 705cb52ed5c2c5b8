"""Plots a person would rather look at than read. matplotlib without a display."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402


def learning_curves(history: dict[str, list[float]], diagnosis: dict, path: Path) -> None:
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, style in (("loss", "-o"), ("val_loss", "-s")):
        if name in history:
            axes.plot(epochs, history[name], style, markersize=3, label=name)
    if "val_loss" in history and len(history["val_loss"]):
        best = int(np.argmin(history["val_loss"]))
        axes.axvline(best + 1, color="grey", linestyle=":", label=f"best val_loss (epoch {best + 1})")
    axes.set(xlabel="epoch", ylabel="loss", title=f"Learning curves: {diagnosis['diagnosis']}")
    axes.text(0.01, -0.22, diagnosis["reason"], transform=axes.transAxes, fontsize=8, wrap=True)
    axes.legend()
    axes.grid(alpha=0.3)
    _save(figure, path)


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: list[str], path: Path) -> None:
    matrix = confusion_matrix(labels, predicted, labels=np.arange(len(classes)))
    size = max(4.0, 0.5 * len(classes) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(matrix, cmap="Blues")
    axes.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="true",
             title=f"Confusion matrix (test, {matrix.sum()} rows)")
    axes.set_xticklabels(classes, rotation=45, ha="right")
    axes.set_yticklabels(classes)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            axes.text(column, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > threshold else "black")
    figure.colorbar(image, ax=axes, fraction=0.046)
    _save(figure, path)


def predicted_vs_actual(targets: np.ndarray, predictions: np.ndarray, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.scatter(targets, predictions, s=8, alpha=0.6)
    if len(targets):
        low, high = float(min(targets.min(), predictions.min())), float(max(targets.max(), predictions.max()))
        axes.plot([low, high], [low, high], color="grey", linestyle=":")
    axes.set(xlabel="actual", ylabel="predicted", title=f"Predicted vs actual (test, {len(targets)} rows)")
    axes.grid(alpha=0.3)
    _save(figure, path)


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
