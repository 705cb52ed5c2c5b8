"""Data quality each night, beside drift: what a column's values say before any distance does.

Each check is a `drift` row (method, score, threshold, alert; listed in `drift_alerts`) and its
figure a `feature_stats` row, so SQL sees both:

- `missing`: the night's missing share minus training's; alerts past `[MonitorDrift]
  missing_threshold` (0.1) or what chance gives the night's rows, whichever is larger;
- `out_of_range`: the share of a number's values outside the training minimum and maximum;
  alerts past `out_of_range_threshold` (0.01) or its noise. The noise is not a fresh value's
  2 / (n + 1) alone: the share of the distribution outside n training values is itself random,
  Beta(2, n - 1) (random halves of scikit-learn's breast cancer, 284 rows, alerted 17 times in
  600 columns against the binomial floor), so its 99.9% quantile is the floor;
- `unseen`: the share of a category's values training never had, against the reference's whole
  vocabulary (every training category, up to profiles.MAX_VOCABULARY = 10,000); alerts past
  `unseen_threshold` (0.05) or its noise. A fresh value is new by chance about as often as
  training saw a category once (Good-Turing: singletons / rows), so a long-tailed column (flight
  destinations) gets that room, not 1 / (n + 1). Beyond 10,000 categories, or against a
  reference.json from before the vocabulary was kept whose column had more than its top 50, the
  check does not run and says so;
- `constant`: 1 when a column that varied in training has one value all night (a stuck sensor,
  an export that fills a default), else 0; alerts at 1.
- `duplicate_id` (on the `[dataset] id_column`): the share of the night's rows rejected because
  an earlier row had their id (validation keeps the first); alerts past `duplicate_id_threshold`
  (0.01). Training ids are unique, so there is no noise to allow for.

A check that cannot run tonight (no values, fewer than two values for `constant`, no vocabulary
for `unseen`) has a NaN score, which never alerts, and a note saying why (the drift row's
`note`; the drift folder's summary.json keeps it and the nightly report shows "not run: <why>"),
so that no report shows a check that never ran as passed.

Numeric and categorical columns get every check; the figures derived from images and texts
(brightness, length) only `missing`: they have no range to keep, and one brightness all night
is no stuck sensor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import beta, norm

from pipeline.stages.drift_statistics import score
from pipeline.stages.profiles import MAX_VOCABULARY, OTHER, TOP_CATEGORIES

NO_VALUES = "no values tonight"


def numeric_checks(values: pd.Series, profile: dict, thresholds, *, ranged: bool = True) -> tuple[list, list]:
    """(feature_stats rows, drift rows) of one numeric column's night against its profile.

    Args:
        ranged: a numeric column: check its training range and whether it is stuck too (not for an
            image's brightness or a text's length, figures derived from the values).
    """
    rows, present = len(values), values.dropna().to_numpy(dtype="float64")
    low, high = profile.get("min"), profile.get("max")
    outside = float(np.mean((present < low) | (present > high))) if len(present) and low is not None else np.nan
    range_note = NO_VALUES if not len(present) else "training had no values" if low is None else None
    reference_present = max(1, round(profile["rows"] * (1 - profile["missing_share"])))
    expected = 2 / (reference_present + 1)
    # The mass outside the training range, at `confidence`; then the night's own sampling of it.
    mass = float(beta.ppf(thresholds.confidence, 2, max(reference_present - 1, 1)))
    limit = max(thresholds.out_of_range, mass + _share_noise(mass, len(present), thresholds.confidence))
    missing = _missing(rows, len(present), profile, thresholds)
    constant = _constant(pd.Series(present).nunique(), profile.get("std") or 0.0, len(present), rows, thresholds)
    if not ranged:  # a derived figure: the same brightness all night is no stuck sensor
        return [], [missing]
    return [("out_of_range_share", outside, expected)], [
        missing,
        score("out_of_range", outside, limit, rows, thresholds.min_rows, range_note),
        constant,
    ]


def categorical_checks(values: pd.Series, profile: dict, thresholds) -> tuple[list, list]:
    """(feature_stats rows, drift rows) of one categorical column's night against its profile."""
    rows, present = len(values), values.dropna().astype(str)
    known, why_not = known_categories(profile)
    if why_not is None and not len(present):
        why_not = NO_VALUES
    unseen = float((~present.isin(known)).mean()) if why_not is None else np.nan
    training_present = max(1, round(profile["rows"] * (1 - profile["missing_share"])))
    # A fresh value is one training never had by chance: at least 1 / (n + 1), and as often as
    # training met a category only once where it kept count (Good-Turing).
    expected = max(1 / (training_present + 1), profile.get("singletons", 0) / training_present)
    limit = max(thresholds.unseen, expected + _share_noise(expected, len(present), thresholds.confidence))
    stats = [("unseen_share", unseen, 0.0)]
    drift = [
        _missing(rows, len(present), profile, thresholds),
        score("unseen", unseen, limit, rows, thresholds.min_rows, why_not),
        _constant(present.nunique(), float(profile.get("distinct", 0) > 1), len(present), rows, thresholds),
    ]
    return stats, drift


def known_categories(profile: dict) -> tuple[set[str], str | None]:
    """(every category the reference had, None), or (empty set, why they are not known).

    A reference.json from before the vocabulary was kept has only the top categories: with none
    folded into "(other)" those are all of them; otherwise an unseen category cannot be told from a
    rare known one.
    """
    if "vocabulary" in profile:
        if profile["vocabulary"] is not None:
            return set(profile["vocabulary"]), None
        return set(), (
            f"the reference had {profile['distinct']:,} categories, more than the {MAX_VOCABULARY:,} "
            "whose names it keeps"
        )
    if profile["proportions"].get(OTHER, 0.0) == 0.0:
        return set(profile["proportions"]) - {OTHER}, None
    return set(), (
        f"the reference keeps the names of its top {TOP_CATEGORIES} of {profile['distinct']:,} categories only "
        "(made before the whole vocabulary was kept: refit the preprocessor to rebuild it)"
    )


def duplicate_id_check(duplicates: int, rows: int, thresholds) -> tuple[list, list]:
    """(feature_stats rows, drift rows) of the night's repeated ids among its `rows` rows read."""
    share = duplicates / rows if rows else np.nan
    return [("duplicate_id_share", share, 0.0)], [
        score("duplicate_id", share, thresholds.duplicate_id, rows, thresholds.min_rows, "no rows read tonight")
    ]


def _missing(rows: int, present: int, profile: dict, thresholds) -> tuple:
    share = profile["missing_share"]
    increase = (rows - present) / rows - share if rows else np.nan
    limit = max(thresholds.missing, _share_noise(share, rows, thresholds.confidence))
    return score("missing", increase, limit, rows, thresholds.min_rows, "no rows tonight")


def _constant(distinct: int, training_spread: float, present: int, rows: int, thresholds) -> tuple:
    stuck = float(distinct == 1 and training_spread > 0) if present >= 2 else np.nan
    note = NO_VALUES if not present else f"{present} value tonight: constant needs at least 2"
    return score("constant", stuck, 0.5, rows, thresholds.min_rows, note)


def _share_noise(expected: float, rows: int, confidence: float) -> float:
    """How far above `expected` a share of `rows` draws gets by chance, with probability 1 - confidence."""
    if rows <= 0:
        return 0.0
    floor = max(expected, 0.5 / rows)  # a share of zero in training still gives half a row of room
    return float(norm.ppf(confidence) * np.sqrt(floor * (1 - min(floor, 0.5)) / rows))
