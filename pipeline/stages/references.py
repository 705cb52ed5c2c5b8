"""What a night's drift is measured against: `[MonitorDrift] reference`.

- training (default): the training split's profile. A night should look like the data the model
  learned from; right when the data has no season.
- rolling: the last N nights that did not alert, scored by the same model. Follows slow,
  accepted change (a growing customer base) and compares like with like on seasonal data once
  the season has started; it also follows a slow drift, so keep an eye on live quality.
- calendar: the training rows within `calendar_days` days of the night's day of the year, from
  every year training covers, and the model's test predictions in the same window. For seasonal
  data with a year or more of training; the window is centred on the night, so the first and
  the last night of a month are each compared with their own weeks.

A reference that cannot be built (no quiet nights yet, no training rows in the window) falls back
to the training split and says so in its description: the report and the log show it.
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.stages.profiles import (
    categorical_profile,
    monitored,
    numeric_profile,
    prediction_profile,
    reference_profile,
    with_training_vocabulary,
)
from pipeline.stages.schema import Schema
from pipeline.stages.seasons import CALENDAR

REFERENCES = ("training", "rolling", "calendar")
ROLLING_ROWS = 200_000  # at most this many rows of the quiet nights are profiled (a sample beyond)
YEAR_DAYS = 365


@dataclass(frozen=True)
class Reference:
    features: dict  # a `reference_profile`: what the night's features are compared with
    predictions: dict | None  # a `prediction_profile`; None: the model's test predictions
    description: str  # one line for the log and the night report
    fallback: bool = False  # the reference asked for could not be built


@dataclass(frozen=True)
class QuietNight:
    date: datetime.date
    rows: pd.DataFrame  # the night's valid rows, typed by validation
    predictions: pd.Series  # the model's predicted class (or value) per row


def training_reference(profile: dict) -> Reference:
    return Reference(profile, None, "the training split")


def in_window(days, date: datetime.date, window_days: int) -> np.ndarray:
    """Which days of the year lie within `window_days` of `date`'s, around the turn of the year too."""
    gap = np.abs(np.asarray(days, dtype="float64") - date.timetuple().tm_yday)
    return np.minimum(gap, YEAR_DAYS - gap) <= window_days


def calendar_reference(
    training: dict,
    date: datetime.date,
    *,
    schema: Schema,
    window_days: int,
    min_rows: int,
    test_calendar: dict | None,
    numeric: bool,
) -> Reference:
    """The training rows within `window_days` of `date`'s day of the year, or the training split
    with the reason it had to be.

    Args:
        training: the model's reference.json (with its CALENDAR sample).
        test_calendar: {"day_of_year": [...], "prediction": [...]} of the test split, from the
            evaluation; None: predictions are compared with the whole test split.
        numeric: the model is a regression (predicted values, not classes).
    """
    sample = training.get(CALENDAR)
    when = f"{date.day} {calendar.month_name[date.month]}"
    if not sample:
        return _fallback(
            training,
            "calendar asked for, but the model's training split has no dated time column "
            "([dataset] time_column, or a model trained before the calendar reference: retrain)",
        )
    chosen = in_window(sample["day_of_year"], date, window_days)
    rows = int(chosen.sum())
    if rows < min_rows:
        return _fallback(
            training, f"calendar asked for, but training has {rows} rows within {window_days} days of {when}"
        )
    rng = np.random.default_rng(0)
    features = {}
    for feature, _, kind in monitored(schema):
        values = pd.Series(np.asarray(sample["features"][feature], dtype=object)[chosen])
        if kind == "categorical":
            features[feature] = with_training_vocabulary(
                categorical_profile(values), training["features"].get(feature, {})
            )
        else:
            # An image feature is known for the decoded part of the sample only (not missing elsewhere).
            values = values.astype("float64").dropna() if kind == "image" else values.astype("float64")
            features[feature] = numeric_profile(values, training.get("bins", 10), 2000, rng)
    profile = {**training, "rows": rows, "features": features}
    profile.pop(CALENDAR)
    predictions, said = None, "the whole test split's predictions"
    if test_calendar:
        window = in_window(test_calendar["day_of_year"], date, window_days)
        if window.sum() >= min_rows:
            predicted = np.asarray(test_calendar["prediction"], dtype=object)[window].tolist()
            predictions, said = prediction_profile(predicted, numeric=numeric), "test predictions of the window"
    sampled = f" of a {len(sample['day_of_year'])}-row sample" if sample["rows"] > len(sample["day_of_year"]) else ""
    return Reference(
        profile, predictions, f"calendar: {rows} training rows{sampled} within {window_days} days of {when} ({said})"
    )


def rolling_reference(
    training: dict, nights: Sequence[QuietNight], *, wanted: int, schema: Schema, numeric: bool, min_rows: int
) -> Reference:
    """The quiet nights' rows profiled as one reference, or the training split when too few."""
    rows = sum(len(night.rows) for night in nights)
    if not nights or rows < min_rows:
        return _fallback(training, f"rolling asked for, but {len(nights)} earlier quiet night(s) hold {rows} rows")
    table = pd.concat([night.rows for night in nights], ignore_index=True)
    predicted = pd.concat([night.predictions for night in nights], ignore_index=True)
    if len(table) > ROLLING_ROWS:
        table = table.sample(n=ROLLING_ROWS, random_state=0)
    if len(predicted) > ROLLING_ROWS:
        predicted = predicted.sample(n=ROLLING_ROWS, random_state=0)
    background = training.get("image_background")
    features = reference_profile(table, schema, background=tuple(background) if background is not None else None)
    for feature, _, kind in monitored(schema):
        if kind == "categorical" and feature in training["features"]:
            profile = with_training_vocabulary(features["features"][feature], training["features"][feature])
            features["features"][feature] = profile
    predictions = prediction_profile(predicted.tolist(), numeric=numeric)
    dates = sorted(night.date for night in nights)
    span = dates[0].isoformat() if len(dates) == 1 else f"{dates[0].isoformat()} to {dates[-1].isoformat()}"
    return Reference(features, predictions, f"rolling: {len(nights)} of {wanted} quiet nights, {span} ({rows} rows)")


def _fallback(training: dict, reason: str) -> Reference:
    return Reference(training, None, f"the training split ({reason})", fallback=True)
