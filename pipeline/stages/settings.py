"""Stage settings that tasks need before any data is read: their defaults and their checks.

Light on purpose (no NumPy, pandas or image decoder): `import tasks` and the completeness checks
of a no-op rerun load this, not the stages that use the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import DataError

# -- images: what transparent pixels are composited onto (`[FitPreprocessor] image_background`;
# the decoder is pipeline/stages/images.py)

Background = tuple[int, int, int]
WHITE: Background = (255, 255, 255)
DEFAULT_BACKGROUND = "white"


def parse_background(text: str) -> Background:
    """A colour name or #rrggbb as (red, green, blue); 'white' when empty.

    Raises:
        ValueError: naming the setting and the value.
    """
    from PIL import ImageColor

    try:
        red, green, blue, *_ = ImageColor.getrgb(text.strip() or DEFAULT_BACKGROUND)
    except ValueError:
        raise ValueError(
            f"[FitPreprocessor] image_background: {text!r} is no colour; use a name (white, black) or #rrggbb"
        ) from None
    return int(red), int(green), int(blue)


# -- images: how large an image may be (`[FitPreprocessor] max_image_side`, `max_image_bytes`;
# the size rule is pipeline/stages/features.py's, the file checks pipeline/stages/validation.py's)

# The longest side of an image input chosen from the data: a 512 x 512 x 3 float32 input is 3 MB an
# example, where one 12000 x 12000 first image used to make it 1.6 GB (docs/data.md).
MAX_IMAGE_SIDE = 512
MAX_IMAGE_BYTES = 256 * 2**20  # larger image files are rejected unread (docs/bad-input.md)


@dataclass(frozen=True)
class ImageRules:
    """Which files are read as images: regular files of at most max_bytes, and, where root is set
    (`[dataset] image_root`), only those whose real path (links resolved) lies inside it."""

    max_bytes: int = MAX_IMAGE_BYTES
    root: str = ""  # empty: anywhere the pipeline's user may read


def check_image_limit(key: str, value: int) -> int:
    """A `[FitPreprocessor]` image limit, checked: a positive whole number.

    Raises:
        DataError: naming the setting and the value (one line, also when a version is computed).
    """
    if value < 1:
        raise DataError(f"[FitPreprocessor] {key}: {value} is no limit; use a positive number")
    return value


# -- dates: the rules a date column is read by (`[dataset] date_format`; pipeline/stages/dates.py)

DAY_FIRST, MONTH_FIRST = "day-first", "month-first"
RULES = (DAY_FIRST, MONTH_FIRST)


def check_rule(rule: str) -> str:
    """A `date_format` value, checked: day-first, month-first, a strftime format or empty.

    Raises:
        ValueError: naming the setting.
    """
    rule = rule.strip()
    if rule and rule not in RULES and "%" not in rule:
        raise ValueError(
            f"[dataset] date_format: {rule!r} is neither {DAY_FIRST}, {MONTH_FIRST} "
            "nor a format such as %%d/%%m/%%Y (%% is % in luigi.cfg)"
        )
    return rule


# -- near-duplicates (`[SplitData] near_duplicate_threshold`; pipeline/stages/near_duplicates.py)

HASH_BITS = 64
DEFAULT_THRESHOLD = 3  # hashes differing in at most 2 of 64 bits (docs/data.md has the measurements)
