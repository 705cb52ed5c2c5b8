"""Per-feature drift policies: `[MonitorDrift] policies = weekday:per_night, month:range`.

Some features alert every night by construction. A daily batch holds one weekday, so its
weekday's distribution is never training's (PSI, Jensen-Shannon, `constant` all alert). A policy
says what to check instead; a feature without one gets every check.

- `all` (the default): every drift and data-quality check.
- `per_night`: a feature constant within a batch by design. The night's values must be values
  training held (method `per_night`: the share of the night's values training never had; any
  such value alerts), and no more missing than in training (`missing`); its distribution and
  whether it varies are not checked.
- `range`: only the checks that each value is valid: `missing`, `out_of_range`, `unseen`.
- `off`: no drift rows at all; the feature's statistics are still stored.

When a feature alerts `constant` on a night and training held it constant within each date of
its time column (pipeline/stages/within_dates.py), the alert line suggests `per_night`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline.errors import DataError
from pipeline.stages.drift_statistics import score
from pipeline.stages.profiles import derived_features, monitored, split_images
from pipeline.stages.schema import Schema
from pipeline.stages.within_dates import MAX_VALUES

POLICIES = ("all", "per_night", "range", "off")
VALIDITY_CHECKS = ("missing", "out_of_range", "unseen")
PER_NIGHT = "per_night"  # also the drift method of a per_night feature's own check


class PolicyError(DataError):
    """`[MonitorDrift] policies` names a feature or a policy that does not exist."""


def parse_policies(text: str, features: Iterable[str], valued: Iterable[str] = ()) -> dict[str, str]:
    """{feature: policy} from "weekday:per_night, month:range"; features left out get `all`.

    Args:
        features: the features the model monitors.
        valued: those of them that are a column's own values (numeric or categorical): the only
            ones `per_night` can check (an image's brightness or a text's length is no value a
            night is made of).

    Raises:
        PolicyError: an entry without a colon, an unknown policy, or a feature the model does not
            monitor (the message lists the choices).
    """
    features = list(features)
    policies = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        feature, colon, policy = (part.strip() for part in entry.rpartition(":"))
        if not colon or not feature:
            raise PolicyError(f"[MonitorDrift] policies: {entry!r} is not FEATURE:POLICY (e.g. weekday:per_night)")
        if policy not in POLICIES:
            raise PolicyError(f"[MonitorDrift] policies: {entry!r}: the policy is one of {', '.join(POLICIES)}")
        if feature not in features:
            raise PolicyError(
                f"[MonitorDrift] policies: {entry!r}: the model monitors no feature {feature!r} "
                f"(it monitors {', '.join(features)})"
            )
        if policy == PER_NIGHT and feature not in set(valued):
            raise PolicyError(
                f"[MonitorDrift] policies: {entry!r}: per_night checks a numeric or categorical column's "
                "values, not a figure derived from images or texts (use range or off)"
            )
        if feature in policies:
            raise PolicyError(f"[MonitorDrift] policies: {feature!r} has two policies; give it one")
        policies[feature] = policy
    return {feature: policy for feature, policy in policies.items() if policy != "all"}


def apply_policies(
    stats: pd.DataFrame,
    drift: pd.DataFrame,
    policies: dict[str, str],
    *,
    batch: pd.DataFrame,
    schema: Schema,
    training: dict,
    thresholds,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The night's (stats, drift) tables with each feature's policy applied; new frames.

    Args:
        batch: the night's valid rows, typed by validation.
        training: the training reference (reference.json): its per-feature profile, and what
            each feature did within a date (pipeline/stages/within_dates.py) where recorded.
        thresholds: the night's `DriftThresholds` (min_rows).
    """
    if not policies or len(batch) == 0:
        return stats, drift
    wanted = [_kept(policies.get(feature, "all"), method) for feature, method in zip(drift["feature"], drift["method"])]
    kept = drift[pd.Series(wanted, index=drift.index, dtype=bool)]
    per_night = [feature for feature, policy in policies.items() if policy == PER_NIGHT]
    if not per_night:
        return stats, kept.reset_index(drop=True)
    derived = _derived(batch, schema, per_night)
    new_stats, new_drift = [], []
    for feature in per_night:
        share, known, why_not = _unseen_share(derived[feature], feature, training)
        new_stats.append((feature, "unseen_value_share", share, 0.0))
        new_stats.append((feature, "night_values", float(derived[feature].nunique()), known))
        new_drift.append((feature, *score(PER_NIGHT, share, 0.0, len(derived), thresholds.min_rows, why_not)))
    stats = pd.concat([stats, pd.DataFrame(new_stats, columns=stats.columns)], ignore_index=True)
    drift = pd.concat([kept, pd.DataFrame(new_drift, columns=drift.columns)], ignore_index=True)
    drift["alert"] = drift["alert"].astype(bool)
    return stats, drift


def suggestions(drift: pd.DataFrame, training: dict, policies: dict[str, str]) -> dict[str, str]:
    """{feature: policy that would fit} for each feature alerting `constant` tonight that training
    held constant within each date; {} where training had no time column."""
    within = training.get("within_dates", {}).get("features", {})
    stuck = drift[drift["alert"].astype(bool) & (drift["method"] == "constant")]["feature"]
    return {
        feature: PER_NIGHT
        for feature in dict.fromkeys(stuck)
        if feature not in policies and within.get(feature, {}).get("constant_within_dates")
    }


def suggestion_line(suggested: dict[str, str], time_column: str | None) -> str:
    """e.g. "weekday is constant within each training date of 'flight_date': [MonitorDrift]
    policies = weekday:per_night would fit"; "" when nothing is suggested."""
    if not suggested:
        return ""
    names = ", ".join(suggested)
    verb = "is" if len(suggested) == 1 else "are"
    setting = ", ".join(f"{feature}:{policy}" for feature, policy in suggested.items())
    return (
        f"{names} {verb} constant within each training date of {time_column!r}: "
        f"[MonitorDrift] policies = {setting} would fit"
    )


def _kept(policy: str, method: str) -> bool:
    if policy == "off":
        return False
    if policy == "range":
        return method in VALIDITY_CHECKS
    if policy == PER_NIGHT:
        return method == "missing"  # its own per_night check replaces the others
    return True


def _derived(batch: pd.DataFrame, schema: Schema, features: list[str]) -> pd.DataFrame:
    plain, _ = split_images(schema)
    columns = {column for feature, column, _ in monitored(plain) if feature in features}
    subset = dataclasses.replace(plain, kinds={c: k for c, k in plain.kinds.items() if c in columns})
    return derived_features(batch, subset)


def _unseen_share(values: pd.Series, feature: str, training: dict) -> tuple[float, float, str | None]:
    """(share of the night's present values training never held, how many values training held,
    why the share is NaN): NaN without values tonight, or when the reference kept no values
    (over MAX_VALUES, or a model from before policies) and the feature has no range to fall back on."""
    present = values.dropna()
    if present.empty:
        return np.nan, np.nan, "no values tonight"
    known = training.get("within_dates", {}).get("features", {}).get(feature, {}).get("values")
    if known is not None:
        numeric = pd.api.types.is_numeric_dtype(present)
        held = present.astype("float64").isin(known) if numeric else present.astype(str).isin(known)
        return float((~held).mean()), float(len(known)), None
    profile = training["features"].get(feature, {})
    if profile.get("kind") == "numeric" and profile.get("min") is not None:
        inside = present.astype("float64").between(profile["min"], profile["max"])
        return float((~inside).mean()), np.nan, None
    return (
        np.nan,
        np.nan,
        f"training kept no values of {feature} (more than {MAX_VALUES}, or a model from before policies)",
    )
