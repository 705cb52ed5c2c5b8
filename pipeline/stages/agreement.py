"""Agreement between annotators (monitoring stage): Cohen's kappa of every two annotators over the
examples both labeled, and which annotators fall below the agreement a team asks for.

Pure: counts in, figures out. The store keeps, with every label load, how many examples each two
annotators gave each two labels (pipeline/store/annotator_counts.py); pair_agreement turns those
counts into kappa, in time that follows the labels in use, not the examples labeled. The
per-annotator agreement with the resolved label is SQL (the `annotator_agreement` view).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

PAIR_COLUMNS = ("annotator", "other", "overlap", "agreement", "kappa")
PAIR_COUNT_COLUMNS = ("annotator", "other", "label", "other_label", "examples")


@dataclass(frozen=True)
class AgreementSettings:
    """When an annotator is flagged: `[labeling]` in luigi.cfg."""

    min_agreement: float = 0.7  # share of their labels that match the resolved label
    min_compared: int = 10  # labels on examples someone else labeled too, before any verdict


def pair_agreement(counts: pd.DataFrame) -> pd.DataFrame:
    """Each two annotators who labeled a common example: how many, how often the same, and
    Cohen's kappa, from the confusion counts of the two (the `annotator_label_pairs` table).

    Kappa is (observed - chance) / (1 - chance), where observed is the share of examples given
    the same label and chance the agreement two annotators labeling at their own rates would
    reach by luck: scikit-learn's cohen_kappa_score on the same examples, to rounding.

    Args:
        counts: PAIR_COUNT_COLUMNS: for two annotators (each pair both ways round, or one way
            only) and two labels, how many examples the first gave one and the second the other.

    Returns:
        PAIR_COLUMNS, every pair both ways round; kappa is None where it is undefined (both gave
        one and the same class only).
    """
    known = counts[counts["examples"] > 0]
    rows = {}
    for (first, second), cells in known.groupby(["annotator", "other"], sort=True):
        if (second, first) in rows:
            continue  # the pair both ways round in the counts: the other way gives the same figures
        overlap, agreement, kappa = _pair_figures(cells)
        rows[first, second] = (first, second, overlap, agreement, kappa)
        rows[second, first] = (second, first, overlap, agreement, kappa)
    return pd.DataFrame(sorted(rows.values()), columns=list(PAIR_COLUMNS))


def _pair_figures(cells: pd.DataFrame) -> tuple[int, float, float | None]:
    """(overlap, agreement, kappa) of one pair from its confusion cells."""
    examples = cells["examples"].astype("float64")
    overlap = float(examples.sum())
    observed = float(examples[cells["label"] == cells["other_label"]].sum()) / overlap
    first = examples.groupby(cells["label"].to_numpy()).sum() / overlap
    second = examples.groupby(cells["other_label"].to_numpy()).sum() / overlap
    chance = float((first * second.reindex(first.index, fill_value=0.0)).sum())
    kappa = (observed - chance) / (1.0 - chance) if chance < 1.0 else math.nan
    return int(overlap), observed, kappa if math.isfinite(kappa) else None


def confusion_counts(labels: pd.DataFrame) -> pd.DataFrame:
    """PAIR_COUNT_COLUMNS from label rows (example_id, annotator, label; one per example and
    annotator), every pair both ways round: what the store keeps, computed from scratch."""
    both = labels.merge(labels, on="example_id", suffixes=("", "_other"))
    both = both[both["annotator"] != both["annotator_other"]]
    counts = both.groupby(["annotator", "annotator_other", "label", "label_other"]).size()
    return counts.rename("examples").reset_index().set_axis(list(PAIR_COUNT_COLUMNS), axis=1)


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
