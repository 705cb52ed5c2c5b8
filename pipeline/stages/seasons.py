"""The training rows by day of the year, kept for `[MonitorDrift] reference = calendar`.

Written by the features stage into reference.json and read by the monitoring stage
(pipeline/stages/references.py). Its own module, so that the monitoring code's changes do not
change the features stage's version (and retrain every model).
"""

from __future__ import annotations

import pandas as pd

from pipeline.stages.profiles import Background, derived_features, monitored, split_images, unreadable_images
from pipeline.stages.schema import Schema

CALENDAR = "calendar"  # the key in reference.json
CALENDAR_ROWS = 20_000  # training rows kept with their day of the year (a sample beyond)
IMAGE_ROWS = 2_000  # of those, images decoded: as many as the whole reference decodes


def calendar_sample(table: pd.DataFrame, schema: Schema, *, background: Background | None) -> dict | None:
    """Up to CALENDAR_ROWS training rows' monitored features and day of the year; None without
    a dated time column. Plain JSON, kept in reference.json under CALENDAR."""
    days = days_of_year(table, schema.time_column)
    if days is None:
        return None
    rows = table.sample(n=CALENDAR_ROWS, random_state=0) if len(table) > CALENDAR_ROWS else table
    plain, only_images = split_images(schema)
    derived = derived_features(rows, plain, background=background)
    images = derived_features(rows.iloc[:IMAGE_ROWS], only_images, background=background).reindex(rows.index)
    features = {}
    for feature, column, kind in monitored(schema):
        if kind == "image":
            # Unreadable images are left out, as the whole reference leaves them out: not missing.
            values = images[feature].where(~unreadable_images(rows[column], images, column))
        else:
            values = derived[feature]
        features[feature] = [None if pd.isna(v) else (str(v) if kind == "categorical" else float(v)) for v in values]
    return {"rows": len(table), "day_of_year": days.loc[rows.index].tolist(), "features": features}


def days_of_year(table: pd.DataFrame, time_column: str) -> pd.Series | None:
    """Each row's day of the year (1 to 366); None when the time column is missing or not dates."""
    if not time_column or time_column not in table.columns:
        return None
    times = table[time_column]
    if not pd.api.types.is_datetime64_any_dtype(times):
        return None  # numbers (a year, a step) have no season
    return times.dt.day_of_year.astype("Int64")
