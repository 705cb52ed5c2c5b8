"""Dates read one way only: a declared rule, or the one reading every value allows; never a guess.

pandas reads `02/01/2012` as 1 February and `13/01/2012` as 13 January in the same column, one
value at a time. Here a column is read by one rule: ISO 8601 (2012-01-02) always, and the
numeric day/month forms by the rule `[dataset] date_format` declares (`day-first`,
`month-first`, or a strftime format such as `%d/%m/%Y`). Without a rule, the values must decide:
a `13/01/2012` proves day-first; a column whose values all read both ways, differently, stops
the run (`AmbiguousDates`) instead of silently putting the future into training.

Dates as features (`datetime` kind) are given to the model as their parts: the year, and the
month, day of week and day of year as points on a circle, so December sits beside January. A
column whose training times vary within a day also gives its time of day, on a circle of 24 hours
(23:59 beside 00:00); a date-only column gains no constant parts. The fit records that decision
as the part columns it lists (NumericScaling.columns), and scoring takes the parts listed: a
preprocessor fitted before the time of day was a part scores as it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.stages.settings import DAY_FIRST, MONTH_FIRST, RULES, check_rule  # noqa: F401 - re-exported

# 1/2/2012, 01.02.12, 1-2-2012 14:30: day and month in an order only a rule can tell.
NUMERIC_DATE = r"(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})(?P<rest>(?:[ T].*)?)"
ISO_DATE = r"\d{4}-\d{1,2}-\d{1,2}(?:[ T].*)?"
LOOKS_LIKE_DATE = rf"(?:{ISO_DATE}|{NUMERIC_DATE}|\d{{4}}/\d{{1,2}}/\d{{1,2}}(?:[ T].*)?)"
DATE_SHARE = 0.95  # a column is inferred `datetime` when this share of its values reads as dates
INFERENCE_SAMPLE = 1000  # values looked at before a whole column is parsed
TWO_DIGIT_PIVOT = 69  # as strptime's %y: 00-68 are 2000-2068, 69-99 are 1969-1999
DATE_PARTS = ("year", "month_sin", "month_cos", "weekday_sin", "weekday_cos", "yearday_sin", "yearday_cos")
# The time of day as one point on a 24-hour circle (minutes since midnight, seconds as a fraction):
# the hour and the minute together, so 10:59 sits beside 11:00 and 23:59 beside 00:00. One pair,
# not an hour pair and a minute pair: the minute within the hour has no cycle of its own to learn.
TIME_PARTS = ("timeofday_sin", "timeofday_cos")
MINUTES_PER_DAY = 24 * 60
# A column is date-only when one time of day (midnight, usually) holds this share of its training
# values: a stray timed value among dates would otherwise become a near-constant part whose few
# other values standardise to outliers of ten or a hundred deviations.
DATE_ONLY_SHARE = 0.99


class AmbiguousDates(ValueError):
    """Values that read two ways under no declared rule; the message names rows and readings."""

    def __init__(self, labels: pd.Index, why: str):
        self.labels = labels  # index labels of the values no single reading decides
        super().__init__(why)


@dataclass(frozen=True)
class ParsedDates:
    times: pd.Series  # datetime64[ns, UTC]; NaT where a present value matched no reading
    rule: str  # the rule the values were read by: declared, decided by the values, or "" (no need)


def parse_dates(values: pd.Series, rule: str = "", *, decide: bool = True) -> ParsedDates:
    """Every value read by one rule; see the module docstring.

    Args:
        decide: whether the values may decide a rule none was declared for. A nightly batch may
            not: training decided, and a night whose values happen to prove the other order
            would read the same column another way. Undecided, a value that reads two ways
            differently is ambiguous; one that reads only one way is read that way.

    Raises:
        AmbiguousDates: no rule was declared and the values do not decide one.
    """
    if pd.api.types.is_datetime64_any_dtype(values):  # Parquet and friends: typed already
        return ParsedDates(pd.to_datetime(values, utc=True), rule)
    text = values.astype("string").str.strip()
    times = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    iso = text.str.fullmatch(ISO_DATE).fillna(False).astype(bool)
    times[iso] = _iso(text[iso])
    rest = text.notna() & ~iso
    if "%" in rule:
        times[rest] = pd.to_datetime(text[rest], format=rule, errors="coerce", utc=True)
        return ParsedDates(times, rule)
    parts = text[rest].str.extract(f"^{NUMERIC_DATE}$").astype(object)
    numeric = parts["a"].notna()
    if numeric.any():
        rule = _numeric_rule(parts[numeric], rule) if decide or rule else _per_value(parts[numeric])
        times[numeric[numeric].index] = _numeric_reading(parts[numeric], rule)
    other = rest & ~rest.index.isin(numeric[numeric].index)
    if other.any():  # written-out forms (1 Feb 2012, 2012/02/01) read only one way
        times[other] = pd.to_datetime(text[other].astype(object), format="mixed", errors="coerce", utc=True)
    return ParsedDates(times, rule)


def parse_times(values: pd.Series, rule: str = "", *, decide: bool = True) -> ParsedDates:
    """A time column as numbers (a year, an epoch) or as dates read by one rule (see the module docstring),
    whichever reading parses more values; NaN/NaT where it does not.

    Raises:
        AmbiguousDates: the dates read two ways and no rule says which.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return parse_dates(values, rule)
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() == values.notna().sum():
        return ParsedDates(numbers.astype("float64"), rule)
    dates = parse_dates(values, rule, decide=decide)
    return ParsedDates(numbers.astype("float64"), rule) if numbers.notna().sum() >= dates.times.notna().sum() else dates


def looks_like_dates(values: pd.Series) -> bool:
    """Most values of a text column are written as dates: a cheap look at a sample first."""
    present = values.dropna().astype(str).str.strip()
    if present.empty:
        return False
    sample = present.head(INFERENCE_SAMPLE)
    if sample.str.fullmatch(LOOKS_LIKE_DATE).mean() < DATE_SHARE:
        return False
    try:
        parsed = parse_dates(present).times
    except AmbiguousDates:
        return True  # dates, whose order the validation stage will ask for
    return parsed.notna().mean() >= DATE_SHARE


def date_part_columns(columns: list[str], train: pd.DataFrame | None = None) -> list[str]:
    """The numeric columns a fit makes of these date columns: DATE_PARTS each, and TIME_PARTS for
    each whose times vary within a day in the training rows (`has_time_of_day`); without training
    rows, the date parts only. The preprocessor lists them (NumericScaling.columns) and scoring
    takes the parts listed, so the decision is made once, by the fit."""
    parts = []
    for column in columns:
        timed = train is not None and has_time_of_day(train[column])
        parts += [f"{column}:{part}" for part in DATE_PARTS + (TIME_PARTS if timed else ())]
    return parts


def has_time_of_day(times: pd.Series) -> bool:
    """Whether the times vary within a day: no one time of day holds DATE_ONLY_SHARE of them."""
    minutes = _minutes_of_day(pd.to_datetime(times, utc=True)).dropna()
    return not minutes.empty and minutes.value_counts(normalize=True).iloc[0] < DATE_ONLY_SHARE


def with_date_parts(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The table with every date column's parts beside it (pipeline/stages/features.py scales them).

    Every part, the time of day's too, whatever the rows hold: the caller takes the part columns
    its preprocessor lists (`date_part_columns`), never a choice made again from a night's rows.
    """
    if not columns:
        return table
    return pd.concat([table, *(date_parts(table[column], column) for column in columns)], axis=1)


def date_parts(times: pd.Series, column: str) -> pd.DataFrame:
    """The year and four cycles (month, day of week, day of year, time of day) as sine and cosine;
    NaN if missing. Times are read in UTC, as validation stores them."""
    times = pd.to_datetime(times, utc=True)
    frame = {f"{column}:year": times.dt.year.astype("float64")}
    cycles = {
        "month": ((times.dt.month - 1).astype("float64"), 12.0),
        "weekday": (times.dt.day_of_week.astype("float64"), 7.0),
        "yearday": ((times.dt.day_of_year - 1).astype("float64"), 365.25),
        "timeofday": (_minutes_of_day(times), float(MINUTES_PER_DAY)),
    }
    for name, (position, period) in cycles.items():
        angle = 2 * np.pi * position / period
        frame[f"{column}:{name}_sin"] = np.sin(angle)
        frame[f"{column}:{name}_cos"] = np.cos(angle)
    return pd.DataFrame(frame, index=times.index)


def _minutes_of_day(times: pd.Series) -> pd.Series:
    """Minutes since midnight (float64, seconds as a fraction; NaN where missing) of UTC times."""
    return (times - times.dt.floor("D")).dt.total_seconds() / 60.0


def _iso(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)


def _numeric_rule(parts: pd.DataFrame, rule: str) -> str:
    """The declared rule, or the one every numeric date allows; AmbiguousDates when none decides."""
    if rule in RULES:
        return rule
    day_first, month_first = _reading(parts, DAY_FIRST), _reading(parts, MONTH_FIRST)
    readable = day_first.notna() | month_first.notna()  # the others are rejected either way
    fits_day, fits_month = day_first[readable].notna().all(), month_first[readable].notna().all()
    if fits_day != fits_month:
        return DAY_FIRST if fits_day else MONTH_FIRST
    differ = (day_first != month_first) & day_first.notna() & month_first.notna()
    if fits_day and not differ.any():
        return ""  # every value reads the same both ways (01/01/2012)
    if not fits_day:  # 13/01/2012 and 01/13/2012 in one column: no single rule reads them all
        day_only = parts.index[(day_first.notna() & month_first.isna()).to_numpy()][0]
        month_only = parts.index[(month_first.notna() & day_first.isna()).to_numpy()][0]
        raise AmbiguousDates(
            parts.index[readable.to_numpy()],
            f"{_written(parts.loc[day_only])!r} reads only {DAY_FIRST} and "
            f"{_written(parts.loc[month_only])!r} only {MONTH_FIRST}",
        )
    raise _two_ways(parts, day_first, month_first, differ)


def _per_value(parts: pd.DataFrame) -> str:
    """ "" when every numeric date reads one way only (or both ways the same); AmbiguousDates if not."""
    day_first, month_first = _reading(parts, DAY_FIRST), _reading(parts, MONTH_FIRST)
    differ = (day_first != month_first) & day_first.notna() & month_first.notna()
    if differ.any():
        raise _two_ways(parts, day_first, month_first, differ, ", and training decided no order")
    return ""


def _two_ways(parts, day_first, month_first, differ, why: str = "") -> AmbiguousDates:
    labels = parts.index[differ.to_numpy()]
    first = labels[0]
    return AmbiguousDates(
        labels,
        f"{_written(parts.loc[first])!r} reads as {_day(day_first[first])} ({DAY_FIRST}) "
        f"or {_day(month_first[first])} ({MONTH_FIRST}){why}",
    )


def _numeric_reading(parts: pd.DataFrame, rule: str) -> pd.Series:
    if rule:
        return _reading(parts, rule)
    # No rule needed: both readings agree where both exist; otherwise the only one there is.
    return _reading(parts, DAY_FIRST).fillna(_reading(parts, MONTH_FIRST))


def _reading(parts: pd.DataFrame, rule: str) -> pd.Series:
    day, month = (parts["a"], parts["b"]) if rule == DAY_FIRST else (parts["b"], parts["a"])
    year = parts["year"].astype(int)
    year = year.where(parts["year"].str.len() == 4, np.where(year < TWO_DIGIT_PIVOT, 2000 + year, 1900 + year))
    iso = year.astype(str) + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + parts["rest"].fillna("")
    return _iso(iso)


def _written(parts: pd.Series) -> str:
    return f"{parts['a']}{parts['sep']}{parts['b']}{parts['sep']}{parts['year']}{parts['rest'] or ''}"


def _day(value) -> str:
    return value.strftime("%Y-%m-%d")
