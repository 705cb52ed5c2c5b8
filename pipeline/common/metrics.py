"""A run's figures: one Metric per final score or epoch of history, and which way each is better.

Light on purpose (no database, no scikit-learn): stage tasks build Metrics, the ledger stores
them, the CLI ranks them.
"""

from __future__ import annotations

from dataclasses import dataclass

METRIC_SPLITS = ("train", "validation", "test", "batch")  # run_metrics.split
NAME_LENGTH = 64  # run_metrics.name
SLICE_LENGTH = 200  # run_metrics.slice
# Figures where lower is better: the headline counts them negatively, and the best epoch of a
# history is their minimum.
LOWER_IS_BETTER = frozenset({"log_loss", "ece", "mae", "rmse", "loss", "val_loss"})


# Diagnoses from the baselines (pipeline/stages/diagnosis.py), which outrank the curves' reading.
BELOW_BASELINE, NO_BETTER_THAN_TRIVIAL, UNPREDICTABLE = "below baseline", "no better than trivial", "unpredictable"
BASELINE_DIAGNOSES = (BELOW_BASELINE, NO_BETTER_THAN_TRIVIAL, UNPREDICTABLE)


def lower_is_better(name: str) -> bool:
    return name in LOWER_IS_BETTER or name.endswith("loss")


def headline_text(definition: dict[str, float]) -> str:
    """A headline definition as a person reads it: `roc_auc`, or `0.7 x f1_macro + 0.3 x accuracy`."""
    if len(definition) == 1 and next(iter(definition.values())) == 1:
        return next(iter(definition))
    return " + ".join(f"{weight:g} x {name}" for name, weight in definition.items()) or "headline"


@dataclass(frozen=True)
class Metric:
    """One figure of a run: a final score (``epoch`` None) or one epoch of history.

    ``split`` is required in practice: one of train, validation, test, batch. The empty
    default only keeps the field order; a Metric without a valid split raises ValueError.
    """

    name: str
    value: float
    split: str = ""  # train, validation, test, batch
    slice: str = ""  # "" = the whole split
    epoch: int | None = None
    baseline: str = ""  # "" = the run's own model; else a baseline's name (pipeline/stages/baselines.py)

    def __post_init__(self) -> None:
        # Checked here, not by the database: PostgreSQL would reject an over-long name while
        # SQLite would store it, and the two backends must behave the same.
        if self.split not in METRIC_SPLITS:
            raise ValueError(f"metric {self.name!r}: split {self.split!r} is not one of {', '.join(METRIC_SPLITS)}")
        if not self.name or len(self.name) > NAME_LENGTH:
            raise ValueError(f"metric name {self.name!r} must have 1 to {NAME_LENGTH} characters")
        if len(self.baseline) > NAME_LENGTH:
            raise ValueError(f"metric baseline {self.baseline!r} is over {NAME_LENGTH} characters")
        if len(self.slice) > SLICE_LENGTH:
            raise ValueError(f"metric slice {self.slice[:40]!r}... is over {SLICE_LENGTH} characters")
