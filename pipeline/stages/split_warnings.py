"""Split warnings: a split that leaks nothing can still not be trusted.

A class that training has and a held-out split lacks is never scored; a label mix that shifts
sharply between training and a held-out split (a time split across seasons) makes its scores
describe another problem. Near-duplicates kept apart (`near_duplicate_threshold = 0`) inflate
the held-out scores. Each finding is one line: the split stage logs them, checks.json lists them
under "warnings", and the evaluation report, `overnight summary` and the diagnosis repeat them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HELD_OUT = ("validation", "test")
# Jensen-Shannon distance (base 2: 0 same mix, 1 nothing in common) between the training labels
# and a held-out split's. Random stratified splits of real data sets stay below 0.1; docs/data.md
# has the figures.
LABEL_SHIFT = 0.2
REGRESSION_BINS = 10  # a regression label is compared in deciles of its training values
SHOWN_CLASSES = 5


def split_warnings(checks: dict, *, task: str, labels: pd.Series, splits: np.ndarray) -> list[str]:
    """One line per reason not to trust the split; empty when there is none."""
    from scipy.spatial.distance import jensenshannon  # here, so that `import tasks` stays light

    rows = checks["rows"]
    held_out = [name for name in HELD_OUT if rows.get(name, 0)]
    warnings = []
    if task == "classification":
        warnings += _missing_classes(checks["class_counts"], held_out)
    distributions = _label_distributions(labels, splits, task)
    for name in held_out if distributions else []:
        distance = float(jensenshannon(distributions["train"], distributions[name], base=2))
        if distance > LABEL_SHIFT:
            warnings.append(
                f"the label mix shifts between train and {name}: Jensen-Shannon distance {distance:.2f} > "
                f"{LABEL_SHIFT} ({_largest_change(distributions, name)}); {name} scores describe other data"
            )
    near = checks.get("near_duplicates")
    if near and not near["kept_together"] and near["straddling"]:
        warnings.append(
            f"{near['straddling']} groups of near-duplicates straddle the splits ([SplitData] "
            "near_duplicate_threshold = 0): held-out scores are inflated by examples training has seen"
        )
    return warnings


def _missing_classes(counts: dict, held_out: list[str]) -> list[str]:
    warnings = []
    for name in held_out:
        missing = [cls for cls, by_split in counts.items() if by_split.get("train", 0) and not by_split.get(name, 0)]
        if missing:
            shown = ", ".join(f"{cls!r} ({counts[cls]['train']} train rows)" for cls in missing[:SHOWN_CLASSES])
            more = f" and {len(missing) - SHOWN_CLASSES} more" if len(missing) > SHOWN_CLASSES else ""
            what, them = ("class", "it") if len(missing) == 1 else ("classes", "them")
            warnings.append(f"{name} has no rows of {what} {shown}{more}: {name} scores say nothing about {them}")
    return warnings


def _label_distributions(labels: pd.Series, splits: np.ndarray, task: str) -> dict[str, pd.Series]:
    """Each split's share of every class, or of every training decile for regression (empty when
    the training labels hold no number)."""
    if task == "classification":
        values = labels.astype(str).to_numpy()
    else:
        numbers = pd.to_numeric(labels, errors="coerce").to_numpy(dtype="float64")
        if np.isnan(numbers[splits == "train"]).all():
            return {}
        edges = np.unique(np.nanquantile(numbers[splits == "train"], np.linspace(0, 1, REGRESSION_BINS + 1)[1:-1]))
        values = np.array([f"decile {i + 1}" for i in np.searchsorted(edges, numbers, side="right")])
    table = pd.crosstab(values, splits)
    return {
        name: table[name] / max(table[name].sum(), 1) if name in table else table.iloc[:, 0] * 0
        for name in ("train", *HELD_OUT)
    }


def _largest_change(distributions: dict[str, pd.Series], name: str) -> str:
    change = (distributions[name] - distributions["train"]).abs().sort_values(ascending=False)
    shown = change.index[:2]
    return ", ".join(
        f"{label!r} {distributions['train'][label]:.0%} of train, {distributions[name][label]:.0%} of {name}"
        for label in shown
    )
