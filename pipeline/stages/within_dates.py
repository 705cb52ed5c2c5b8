"""What each feature does within one date of training, kept for the per-feature drift policies.

A daily night holds one date, so a feature like the weekday or the month has one value all night
by construction: its distribution can never look like training's. The features stage records,
per plain (numeric or categorical) feature, the values training held (where there are few) and
whether the feature was constant within each training date of `[dataset] time_column`. The
monitoring stage (pipeline/stages/policies.py) checks a `per_night` feature's values against
the first and suggests that policy from the second.

Its own module, like pipeline/stages/seasons.py, so that the monitoring code's changes do not
change the features stage's version (and retrain every model).
"""

from __future__ import annotations

import pandas as pd

from pipeline.stages.profiles import derived_features, monitored, split_images
from pipeline.stages.schema import Schema

WITHIN_DATES = "within_dates"  # the key in reference.json
MAX_VALUES = 1_000  # a feature with more distinct training values keeps none (a per_night check says so)


def within_dates_profile(table: pd.DataFrame, schema: Schema) -> dict:
    """{"time_column", "features": {feature: {"values", "constant_within_dates"}}}, plain JSON.

    "values": the distinct training values (text for a categorical, numbers otherwise), sorted;
    None beyond MAX_VALUES. "constant_within_dates": True when the feature varies in training
    but never within one date; None without a time column or without a date holding two rows.
    """
    plain, _ = split_images(schema)
    derived = derived_features(table, plain)
    dates = _dates(table, schema.time_column)
    features = {}
    for feature, _, kind in monitored(plain):
        if kind not in ("numeric", "categorical"):
            continue  # a text's length is no value a night is made of
        values = derived[feature]
        features[feature] = {"values": _values(values, kind), "constant_within_dates": _constant_within(values, dates)}
    return {"time_column": schema.time_column or None, "features": features}


def _values(values: pd.Series, kind: str) -> list | None:
    present = values.dropna()
    distinct = present.astype(str).unique() if kind == "categorical" else present.astype("float64").unique()
    return sorted(distinct.tolist()) if len(distinct) <= MAX_VALUES else None


def _dates(table: pd.DataFrame, time_column: str) -> pd.Series | None:
    """Each row's date (a number, such as a step, is its own date); None without a time column."""
    if not time_column or time_column not in table.columns:
        return None
    times = table[time_column]
    return times.dt.normalize() if pd.api.types.is_datetime64_any_dtype(times) else times


def _constant_within(values: pd.Series, dates: pd.Series | None) -> bool | None:
    if dates is None:
        return None
    known = values.notna() & dates.notna()
    per_date = values[known].astype(str).groupby(dates[known])
    sizes = per_date.size()
    if sizes.empty or sizes.max() < 2:
        return None  # one row per date says nothing about a date's values
    return bool(per_date.nunique().max() <= 1 and values[known].nunique() > 1)
