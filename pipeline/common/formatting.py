"""How numbers and names read in tables, reports and plots, the same everywhere."""

from __future__ import annotations

import math
import numbers
import re

# What a terminal may act on instead of showing: C0 controls (ESC starts colour, cursor and title
# sequences; CR and BS overwrite what was printed), DEL, C1 controls (0x9b is a one-byte CSI), and
# the bidirectional embeddings, overrides and isolates that make text read in another order.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


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


def format_raw(value, *, missing: str = "") -> str:
    """A feature value as the input had it, for a person to recognise the row.

    format_number's four decimals suit scores, not inputs: they show a month of 1 as "1.0000" and
    round 0.123456 away. Here an integer reads as one (a float 3.0 of a parsed column too: "3"),
    another number with the digits it has ("0.123456", "2.5"), text as it is, a date without a
    midnight time. None, NaN and NaT are `missing`.
    """
    if value is None:
        return missing
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    if isinstance(value, numbers.Integral):  # numpy integers too
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return missing
        return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)
    try:
        if value != value:  # NaT
            return missing
    except TypeError:  # pandas' NA, which has no truth value
        return missing
    if not hasattr(value, "hour"):  # a date, or anything else without a time of day
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    parts = ("hour", "minute", "second", "microsecond", "nanosecond")
    if all(getattr(value, part, 0) == 0 for part in parts) and value.tzinfo is None:
        return value.date().isoformat()
    return value.isoformat(sep=" ")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` safe to show a person: each control character escaped as Python's repr writes it.

    ESC becomes ``\\x1b``, a tab ``\\t``, U+202E ``\\u202e``; letters of every script (accents,
    CJK) stay as they are, and so does a backslash, so the escaped form is for reading, not for
    parsing back. ``keep_newlines`` keeps line breaks, for text whose lines are its layout.
    """
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escaped, text)


def printable_json(document: str) -> str:
    """Serialized JSON with any control character left raw written as ``\\uXXXX``.

    Still valid JSON with the same values: raw control characters can only be inside strings
    (a JSON encoder escapes C0 there, but some leave DEL and C1 raw). Line breaks of the indent stay.
    """
    return _CONTROL_BUT_NEWLINE.sub(lambda match: f"\\u{ord(match.group()):04x}", document)


def _escaped(match: re.Match) -> str:
    return repr(match.group())[1:-1]


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
