"""The night charts' date axis: real dates, long gaps between nights compressed into a marked
band, lines broken where nights are missing, and tick labels chosen for the axis's width
(matplotlib's AutoDateLocator and ConciseDateFormatter) so that they never run into each other.

pipeline/rendering/night_plots.py draws on it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import numpy as np
from matplotlib import dates as mdates
from matplotlib.transforms import blended_transform_factory

NIGHT = datetime.timedelta(days=1)
TICK_SPACING_IN = 0.75  # at least this much axis width per date label ("Apr 08" at 7-8 pt is ~0.35 in)
GAP_FACTOR = 1.5  # nights further apart than this many usual steps have missing nights between them
CURRENT = "#424242"  # this night's marker line


def date_axis(
    axes,
    figure,
    days: Sequence[datetime.datetime],
    *,
    current: datetime.date | None = None,
    fontsize: int = 8,
    label: bool = True,
    say_current: bool = True,
) -> None:
    """Nights on a date axis, as many date labels as the axis's width holds; this night marked.

    Within a run of nights the axis is true time. A stretch of missing nights (see `_runs`) is
    drawn as a narrow grey band that says how many days it hides: the nights on either side stay
    apart, and April's nights do not shrink to a sliver because July's are on the same chart.
    ConciseDateFormatter writes "Apr 08" (or "Jul" on a month's first day) and the year once, at
    the axis's end.
    """
    axes.xaxis_date()
    if days:
        runs = _runs(days)
        pad = 0.6 * NIGHT  # half a night and a little: a bar is whole, one night still has a width
        start, end = mdates.date2num(runs[0][0] - pad), mdates.date2num(runs[-1][1] + pad)
        if len(runs) > 1:
            forward, inverse = _compressed(runs, pad, usual_step(days))
            axes.set_xscale("function", functions=(forward, inverse))
            for (_, before), (after, _) in zip(runs, runs[1:]):
                axes.axvspan(
                    before + pad, after - pad, facecolor="#eeeeee", hatch="//", edgecolor="#bdbdbd", linewidth=0
                )
                middle = mdates.num2date(
                    inverse((forward(mdates.date2num(before)) + forward(mdates.date2num(after))) / 2)
                )
                axes.text(
                    middle.replace(tzinfo=None),
                    0.5,
                    f"{(after - before).days - 1} days without a night",
                    transform=blended_transform_factory(axes.transData, axes.transAxes),
                    rotation=90,
                    ha="center",
                    va="center",
                    fontsize=max(fontsize - 1, 6),
                    color="#616161",
                )
        else:
            forward = inverse = None
        axes.set_xlim(start, end)
        figure_width = figure.get_figwidth() * axes.get_position().width
        ticks = _night_ticks(runs, pad, figure_width, forward)
        locator = mdates.ticker.FixedLocator(ticks)
        if len(ticks) > 1:
            formatter = mdates.ConciseDateFormatter(locator)
            # Days say their month ("Apr 08", not "08"): a night is read as a date, not a day number.
            formatter.formats[2] = "%b %d"
            formatter.offset_formats[2] = "%Y"
        else:
            # One tick tells ConciseDateFormatter no level, and it would write "00:00".
            formatter = mdates.DateFormatter("%b %d\n%Y")
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(formatter)
        axes.xaxis.set_minor_locator(mdates.ticker.NullLocator())
    axes.tick_params(axis="x", labelsize=fontsize)
    axes.xaxis.get_offset_text().set_fontsize(fontsize)
    if current is not None:
        current = as_night(current)
        axes.axvline(current, color=CURRENT, linestyle=":", linewidth=1, zorder=1)
        if say_current:
            axes.text(
                current,
                1.0,
                " this night",
                transform=blended_transform_factory(axes.transData, axes.transAxes),
                fontsize=fontsize,
                color=CURRENT,
                ha="left",
                va="top",
            )
    if label:
        axes.set_xlabel("night")


def _runs(days: Sequence[datetime.datetime]) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """(first, last) of each run of nights no further apart than GAP_FACTOR usual steps."""
    ordered = sorted(set(days))
    step = usual_step(ordered)
    runs = [[ordered[0], ordered[0]]]
    for day in ordered[1:]:
        if (day - runs[-1][1]).days > GAP_FACTOR * step:
            runs.append([day, day])
        else:
            runs[-1][1] = day
    return [(first, last) for first, last in runs]


def _compressed(runs, pad: datetime.timedelta, step: float):
    """An x scale's (forward, inverse) in matplotlib date numbers: true time within each run
    (with its padding), each stretch between runs squeezed to at most two usual steps."""
    real, scaled = [], []
    for first, last in runs:
        low, high = mdates.date2num(first - pad), mdates.date2num(last + pad)
        if real:
            scaled.append(scaled[-1] + min(low - real[-1], 2.0 * step))
        else:
            scaled.append(low)
        real.append(low)
        scaled.append(scaled[-1] + high - low)
        real.append(high)
    real, scaled = np.asarray(real), np.asarray(scaled)

    def through(values, source, target):
        values = np.asarray(values, dtype=float)
        inside = np.interp(values, source, target)
        # Slope 1 beyond the ends: np.interp alone would flatten them, and a scale must not.
        return np.where(
            values < source[0],
            target[0] + values - source[0],
            np.where(values > source[-1], target[-1] + values - source[-1], inside),
        )

    return (lambda values: through(values, real, scaled)), (lambda values: through(values, scaled, real))


def _night_ticks(runs, pad: datetime.timedelta, width_in: float, forward) -> list[float]:
    """Tick positions (date numbers): each run's own nice dates, thinned so that no two labels
    come closer than TICK_SPACING_IN on the drawn axis."""
    to_axis = forward or (lambda values: np.asarray(values, dtype=float))
    start = float(to_axis(mdates.date2num(runs[0][0] - pad)))
    end = float(to_axis(mdates.date2num(runs[-1][1] + pad)))
    inches_per_unit = width_in / max(end - start, 1e-9)
    candidates = []
    for first, last in runs:
        low, high = mdates.date2num(first - pad), mdates.date2num(last + pad)
        fit = max(1, int((float(to_axis(high)) - float(to_axis(low))) * inches_per_unit / TICK_SPACING_IN))
        if (last - first).days < 3 or fit == 1:
            # A few nights get a tick each (AutoDateLocator would fall to hours between them).
            ticks = [mdates.date2num(first + NIGHT * offset) for offset in range((last - first).days + 1)]
        else:
            ticks = mdates.AutoDateLocator(minticks=2, maxticks=max(fit, 2)).tick_values(first, last)
        candidates += [tick for tick in ticks if low <= tick <= high]
    kept: list[float] = []
    for tick in sorted(candidates):
        if not kept or (float(to_axis(tick)) - float(to_axis(kept[-1]))) * inches_per_unit >= TICK_SPACING_IN:
            kept.append(float(tick))
    return kept


def broken(
    days: Sequence[datetime.datetime], values: Sequence, shown: Sequence[datetime.datetime]
) -> tuple[list, list]:
    """The points with a NaN wherever a line must not join two of them: a shown night between
    them has no value, or they are further apart than the shown nights' usual step (missing
    nights). Matplotlib leaves a NaN's segments out, so the line breaks there.
    """
    order = {day: index for index, day in enumerate(sorted(set(shown)))}
    step = usual_step(shown)
    x: list = []
    y: list = []
    for index, (day, value) in enumerate(zip(days, values)):
        if index:
            before = days[index - 1]
            skipped = order.get(day, 0) - order.get(before, 0) > 1
            if skipped or (day - before).days > GAP_FACTOR * step:
                # Half a night after the one and before the other: a threshold's steps end
                # there, not halfway across the gap.
                x += [before + NIGHT / 2, day - NIGHT / 2]
                y += [np.nan, np.nan]
        x.append(day)
        y.append(np.nan if value is None else value)
    return x, y


def usual_step(shown: Sequence[datetime.datetime]) -> float:
    """The usual days between shown nights (1 for nightly batches, 7 for weekly ones)."""
    days = sorted(set(shown))
    steps = [(later - earlier).days for earlier, later in zip(days, days[1:])]
    return max(1.0, float(np.median(steps))) if steps else 1.0


def as_night(value) -> datetime.datetime:
    """A night as its midnight: datetimes, unlike dates, take the half days that centre bars and
    bands on a night (date - 12 hours is the same date). SQLite may hand back ISO strings."""
    if isinstance(value, datetime.datetime):
        return datetime.datetime.combine(value.date(), datetime.time())
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time())
    return datetime.datetime.combine(datetime.date.fromisoformat(str(value)[:10]), datetime.time())
