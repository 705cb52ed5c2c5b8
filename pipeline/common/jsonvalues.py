"""Values as JSON (and PostgreSQL's JSONB) accept them: finite floats or None, plain Python types."""

from __future__ import annotations

import math
from typing import Any

from pipeline.common.secrets import redact_secrets


def is_missing(value: Any) -> bool:
    """None, pandas' NA or a float NaN."""
    return value is None or _is_pandas_na(value) or (isinstance(value, float) and math.isnan(value))


def finite_or_none(value: Any) -> float | None:
    """The value as a float, or None where it is missing, NaN or infinite."""
    if is_missing(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def jsonable(value: Any) -> Any:
    """A copy of ``value`` that JSON accepts: NaN and infinities None, numpy scalars Python, sets
    sorted lists, anything else its text; every text has its passwords masked."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(item) for item in value), key=repr)
    if callable(getattr(value, "item", None)):  # numpy scalars, without importing numpy
        try:
            return jsonable(value.item())
        except (TypeError, ValueError):
            pass
    return redact_secrets(str(value))  # Path, date, enum, ...


def _is_pandas_na(value: Any) -> bool:
    # pd.NA without importing pandas: it is a singleton of type NAType.
    return type(value).__name__ == "NAType"
