"""Checking and converting the prediction log's input into the columns' text, JSON and float form.

Text is kept verbatim (a whole float becomes its integer text: 1.0 -> "1"), probabilities become
JSON text, and NaN and infinite floats become NULL. Over-long text is refused here, because
PostgreSQL would reject it while SQLite would store it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from pipeline.common.columns import PREDICTION_COLUMNS
from pipeline.store.tables import drift as drift_table
from pipeline.store.tables import feature_stats
from pipeline.store.tables import predictions as predictions_table

_MAX_ID = predictions_table.c.example_id.type.length
MAX_VERSION = predictions_table.c.model_version.type.length
MAX_FEATURE = drift_table.c.feature.type.length
MAX_STATISTIC = feature_stats.c.statistic.type.length
MAX_METHOD = drift_table.c.method.type.length


def prediction_frame(chunk: pd.DataFrame) -> pd.DataFrame:
    """The chunk's prediction columns, checked: text as str/None, score as float64 (NaN=NULL)."""
    if not isinstance(chunk, pd.DataFrame):
        raise TypeError(f"predictions must be DataFrames, not {type(chunk).__name__}")
    require_frame_columns(chunk, PREDICTION_COLUMNS[:3], "predictions")
    ids = text_column(chunk["example_id"])
    check_ids(ids, "predictions")
    repeated = ids.duplicated()
    if repeated.any():
        raise ValueError(f"example_id {ids[repeated].iloc[0]!r} appears more than once in the batch")
    try:
        score = pd.to_numeric(chunk["score"], errors="raise").astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"predictions: score must be numeric ({exc})") from None
    score = score.where(np.isfinite(score))
    if "probabilities" in chunk.columns:
        probabilities = _json_text_column(chunk["probabilities"])
    else:
        probabilities = pd.Series([None] * len(chunk), index=chunk.index, dtype=object)
    return pd.DataFrame(
        {
            "example_id": ids,
            "prediction": text_column(chunk["prediction"]),
            "score": score,
            "probabilities": probabilities,
        }
    ).reset_index(drop=True)


def require_frame_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}")


def check_ids(ids: pd.Series, what: str) -> None:
    missing = ids.isna()
    if missing.any():
        raise ValueError(f"{what}: {int(missing.sum())} row(s) have no example_id")
    lengths = ids.str.len()
    if len(ids) and (lengths.max() > _MAX_ID or lengths.min() == 0):
        bad = ids[(lengths > _MAX_ID) | (lengths == 0)].iloc[0]
        raise ValueError(f"{what}: example_id {bad[:80]!r} must have 1 to {_MAX_ID} characters")


def check_text(name: str, value: str, limit: int) -> None:
    # Checked here: PostgreSQL would reject an over-long value while SQLite would store it.
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(f"{name} {str(value)[:80]!r} must have 1 to {limit} characters")


def checked(value: Any, name: str, limit: int) -> str:
    text = _text(value)
    check_text(name, text, limit)
    return text


def text_column(series: pd.Series) -> pd.Series:
    """``series`` as Python str objects (object dtype), missing values as None."""
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind in ("string", "empty"):
        values = series.astype(object)
    elif pd.api.types.is_integer_dtype(series.dtype) and not series.hasnans:
        values = series.astype(str).astype(object)
    else:
        values = series.astype(object).map(_text, na_action="ignore")
    return values.where(series.notna(), None)


def _json_text_column(series: pd.Series) -> pd.Series:
    """Probabilities as JSON text: strings kept verbatim, dicts and lists serialised."""
    if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        values = series.astype(object)
    else:
        values = series.astype(object).map(_json_text, na_action="ignore")
    return values.where(series.notna(), None)


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps({str(key): _json_value(item) for key, item in value.items()})
    if isinstance(value, (list, tuple, np.ndarray)):
        return json.dumps([_json_value(item) for item in value])
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text(value: Any) -> str:
    """One value as text: strings verbatim, whole floats without ".0" (1.0 -> "1")."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
        return repr(number)
    return str(value)


def as_date(value: date) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise TypeError(f"batch_date must be a date, not {type(value).__name__}")
