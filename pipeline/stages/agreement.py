"""Agreement between annotators (monitoring stage): Cohen's kappa of every two annotators over the
examples both labeled, and which annotators fall below the agreement a team asks for.

Pure: label rows in, figures out. The store keeps the figures (pipeline/store/labels.py, which
IngestFeedback hands pair_agreement), the per-annotator agreement with the resolved label is SQL
(the `annotator_agreement` view).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import combinations

import pandas as pd

PAIR_COLUMNS = ("annotator", "other", "overlap", "agreement", "kappa")


@dataclass(frozen=True)
class AgreementSettings:
    """When an annotator is flagged: `[labeling]` in luigi.cfg."""

    min_agreement: float = 0.7  # share of their labels that match the resolved label
    min_compared: int = 10  # labels on examples someone else labeled too, before any verdict


def pair_agreement(labels: pd.DataFrame) -> pd.DataFrame:
    """Each two annotators who labeled a common example: how many, how often the same, and
    Cohen's kappa (scikit-learn's) on those examples; every pair twice, both ways round.

    Args:
        labels: columns example_id, annotator, label; one row per example and annotator.

    Returns:
        PAIR_COLUMNS; kappa is None where it is undefined (both gave one and the same class only).
    """
    from sklearn.metrics import cohen_kappa_score

    shared = labels[labels.groupby("example_id")["annotator"].transform("size") > 1]
    wide = shared.pivot(index="example_id", columns="annotator", values="label")
    rows = []
    for first, second in combinations(sorted(wide.columns), 2):
        both = wide[[first, second]].dropna()
        if both.empty:
            continue
        left, right = both[first].astype(str), both[second].astype(str)
        with warnings.catch_warnings():  # one class between them: kappa is 0/0, said as None
            warnings.simplefilter("ignore")
            kappa = float(cohen_kappa_score(left, right))
        kappa = kappa if math.isfinite(kappa) else None
        agreement = float((left == right).mean())
        rows.append((first, second, len(both), agreement, kappa))
        rows.append((second, first, len(both), agreement, kappa))
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


def partner_kappa(pairs: pd.DataFrame) -> dict[str, float | None]:
    """Per annotator, the mean kappa against the others, weighted by the examples shared."""
    known = pairs[pairs["kappa"].notna()]
    result: dict[str, float | None] = dict.fromkeys(pairs["annotator"], None)
    for annotator, own in known.groupby("annotator"):
        result[annotator] = float((own["kappa"] * own["overlap"]).sum() / own["overlap"].sum())
    return result


def flagged(agreement: pd.DataFrame, settings: AgreementSettings) -> pd.Series:
    """True for an annotator whose agreement with the resolved labels is below the minimum, over
    enough compared labels to say so (columns compared, agreement, from `annotator_agreement`)."""
    enough = agreement["compared"].fillna(0) >= settings.min_compared
    return enough & (agreement["agreement"].fillna(0.0) < settings.min_agreement)


def annotator_table(per_annotator: pd.DataFrame, pairs: pd.DataFrame, settings: AgreementSettings) -> pd.DataFrame:
    """Per annotator: labels, compared, agreed, agreement (the `annotator_agreement` view), kappa
    (their mean kappa against the others, weighted by the examples shared) and flagged."""
    table = per_annotator.copy()
    table["kappa"] = table["annotator"].map(partner_kappa(pairs)).astype("float64")
    table["flagged"] = flagged(table, settings)
    return table
