"""Choice by evidence: `auto` trains a few candidate models and keeps the best on validation.

No one setting wins everywhere. Piecewise-linear numbers took Debian's "recommends" table from
0.807 to 0.818 ROC AUC (gradient boosting: 0.820) and diabetes' 310 training rows from r2 0.42
down to 0.34; a text's bag of words alone beat it with its sequence branch on docstrings (0.858
against 0.851) and lost elsewhere. So `auto` trains its defaults first and then, on data large
enough for the validation rows to tell them apart, the alternatives that apply to its inputs,
while the time spent stays within `[TrainModel] search_seconds`; the best validation headline
wins, the first one on a tie. training.json records every candidate, its figures and why the
winner won.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from models.spec import ModelSpec

logger = logging.getLogger(__name__)

# Training rows from which alternatives are tried. Below, a validation split of a tenth is under a
# hundred rows, whose headline moves by more than the candidates differ (diabetes: 44 rows).
MIN_ROWS = 1_000


@dataclass(frozen=True)
class Candidate:
    name: str
    changes: dict = field(default_factory=dict)  # ArchitectureSettings fields (models/spec.py)
    why: str = ""

    @property
    def folder(self) -> str:
        return self.name.replace(" ", "-")


DEFAULTS = Candidate("defaults", {}, "auto as configured")
PIECEWISE_LINEAR = Candidate(
    "piecewise-linear numbers",
    {"numeric_encoding": "piecewise_linear"},
    "numbers as their place among the training quantiles, a slope per range, as trees split them",
)
BAG_OF_WORDS = Candidate(
    "bag of words alone",
    {"text_sequence": False},
    "each text as TF-IDF of its words and word pairs only, the linear model the baseline is",
)


def candidates(spec: ModelSpec, architecture: str, rows: int) -> list[Candidate]:
    """The defaults, then the alternatives that apply: only for `auto`, from MIN_ROWS rows."""
    if architecture != "auto" or rows < MIN_ROWS:
        return [DEFAULTS]
    found = [DEFAULTS]
    if any(input_spec.edges for input_spec in spec.of_kind("numeric")):
        found.append(PIECEWISE_LINEAR)
    if any(input_spec.idf for input_spec in spec.of_kind("text")):
        found.append(BAG_OF_WORDS)
    return found


@dataclass
class SearchResult:
    best: object  # the winner's TrainingResult
    record: dict  # for training.json: "candidates", "chosen", "why"


def search(
    choices: list[Candidate],
    fit: Callable[[Candidate, Path], object],
    score: Callable[[object], float],
    *,
    work_dir: Path,
    budget_s: float,
    headline: str,
) -> SearchResult:
    """Fit each candidate in a folder of its own under work_dir and keep the best score.

    A candidate after the first is skipped, and the record says so, when the time spent plus the
    first one's time would pass budget_s. A killed search takes the finished candidates from their
    folders and resumes the one it was in from its last epoch (pipeline/stages/training.py); the
    seconds it records are this run's.

    Args:
        fit: trains one candidate in the given folder; returns its TrainingResult.
        score: the validation headline of a TrainingResult's model, higher is better.
        headline: the headline's name, for the record.
    """
    started, tried, best, chosen = time.monotonic(), [], None, None
    for index, candidate in enumerate(choices):
        spent = time.monotonic() - started
        if index and spent + tried[0]["seconds"] > budget_s:
            tried.append({"name": candidate.name, "skipped": f"{spent:.0f} s spent of search_seconds = {budget_s:g}"})
            continue
        began = time.monotonic()
        result = fit(candidate, work_dir / candidate.folder)
        value = float(score(result))
        tried.append(
            {
                "name": candidate.name,
                "changes": candidate.changes,
                "why": candidate.why,
                "validation_headline": value,
                "epochs_run": len(result.history.get("loss", [])),
                "restored_epoch": result.restored_epoch,
                "seconds": round(time.monotonic() - began, 1),
            }
        )
        logger.info("candidate %r: validation %s %.4f", candidate.name, headline, value)
        if chosen is None or value > chosen["validation_headline"]:  # the first one wins a tie
            best, chosen = result, tried[-1]
    return SearchResult(best, {"candidates": tried, "chosen": chosen["name"], "why": _why(chosen, tried, headline)})


def _why(chosen: dict, tried: list[dict], headline: str) -> str:
    others = [entry for entry in tried if entry is not chosen and "skipped" not in entry]
    if not others:
        return "the only candidate trained"
    against = ", ".join(f"{entry['name']} {entry['validation_headline']:.4f}" for entry in others)
    return f"highest validation {headline}: {chosen['validation_headline']:.4f} against {against}"
