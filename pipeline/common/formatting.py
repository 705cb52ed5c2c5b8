"""How numbers and names read in tables, reports and plots, the same everywhere."""

from __future__ import annotations

import math
import numbers


def format_number(value, *, missing: str = "-") -> str:
    """Four decimals for scores, counts as whole numbers, exponents for the very large or small.

    Text passes through; None is `missing`; NaN and infinities are "-".
    """
    if value is None:
        return missing
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy integers too
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "-"
    if number.is_integer() and 2 <= abs(number) < 1e12:  # a count (rows); 0 and 1 are likelier scores
        return str(int(number))
    if abs(number) >= 1e6 or 0 < abs(number) < 1e-4:
        return f"{number:.4g}"
    return f"{number:.4f}"


def natural_key(name: str) -> tuple:
    """Sort key for class names and the like: "2" before "10", numbers before words."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def format_bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # not reached
