"""A night's plots for its report: rows, drift and predictions over the nights, live quality.

Shares pipeline/rendering/plots.py's colours and saving; red means "look here": an alert, a
drifted night, a night the model did worse than always predicting one class.

Nights sit on a real date axis: two shown nights months apart are drawn months apart, and a line
breaks where nights are missing instead of joining April to July as if they were neighbours. Tick
labels are chosen for the axis's width (matplotlib's AutoDateLocator and ConciseDateFormatter),
so they never run into each other however many nights are shown.
"""

from __future__ import annotations

import datetime
import itertools
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib import dates as mdates
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

# pyplot through plots.py, which picks the display-less backend first.
from pipeline.rendering.plots import ALERT, REFERENCE, REJECTED, SCORED, Destination, natural_key, plt, save_figure

NIGHT = datetime.timedelta(days=1)
BAR_DAYS = 0.8  # a night's bar is most of its day wide: neighbouring nights stay apart
TICK_SPACING_IN = 0.75  # at least this much axis width per date label ("Apr 08" at 7-8 pt is ~0.35 in)
GAP_FACTOR = 1.5  # nights further apart than this many usual steps have missing nights between them
CURRENT = "#424242"  # this night's marker line


def rows_per_night(
    dates: Sequence[datetime.date],
    scored: Sequence[int],
    rejected: Sequence[int],
    path: Destination,
    *,
    alerts: Sequence[bool],
    current: datetime.date,
) -> None:
    """Stacked bars of scored and rejected rows per night; drifted nights in red."""
    days = [_night(date) for date in dates]
    figure, axes = plt.subplots(figsize=(max(6.0, 0.55 * len(days) + 2) + 1.0, 3.6), layout="constrained")
    scored = np.asarray(scored, dtype=float)
    rejected = np.asarray(rejected, dtype=float)
    if days:
        axes.bar(days, scored, width=BAR_DAYS, color=SCORED, label="scored")
        axes.bar(days, rejected, bottom=scored, width=BAR_DAYS, color=REJECTED, label="rejected")
    totals = scored + rejected
    top = max(float(totals.max()) if len(totals) else 0.0, 1.0)
    for day, alert, total in zip(days, alerts, totals):
        if alert:
            axes.bar(day, max(total, top * 0.02), width=BAR_DAYS, fill=False, edgecolor=ALERT, linewidth=2.5)
            axes.text(day, total + top * 0.03, "DRIFT", color=ALERT, ha="center", fontsize=8, fontweight="bold")
    _date_axis(axes, figure, days, current=current)
    axes.set(ylabel="rows", ylim=(0, top * 1.18), title="Rows per night")
    # Beside the plot, never over the first night's bar.
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes.grid(alpha=0.3, axis="y")
    save_figure(figure, path, layout=False)


def drift_over_nights(
    series: dict[str, dict[str, list[tuple]]],
    dates: Sequence[datetime.date],
    path: Destination,
    *,
    current: datetime.date,
) -> None:
    """One small chart per feature: each method's score per night, its threshold, alerts in red.

    Features that alert this night come first, on a red background. A night without a figure
    (an empty night, a feature added later) breaks the feature's lines, as does a stretch of
    missing nights.

    Args:
        series: feature -> method -> [(date, score, threshold, alert), ...].
        dates: the nights shown, oldest first (the x axis of every chart).
    """
    current = _night(current)

    def alerted_now(feature: str) -> bool:
        return any(point[3] and _night(point[0]) == current for points in series[feature].values() for point in points)

    days = [_night(date) for date in dates]
    shown = set(days)
    features = sorted(series, key=lambda feature: (not alerted_now(feature), feature))
    methods = sorted({method for feature in features for method in series[feature]})
    # More methods than the cycle's 10 colours (class_share made 11): the colours repeat, never run out.
    colours = dict(zip(methods, itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])))
    columns = min(3, max(1, len(features)))
    rows = -(-len(features) // columns)
    # Constrained layout keeps the wrapped titles, the tick labels and the legend above apart.
    figure, grid = plt.subplots(
        rows, columns, figsize=(4.3 * columns, 2.6 * rows + 0.7), squeeze=False, layout="constrained"
    )
    for axes, feature in zip(grid.flat, features):
        for method, points in sorted(series[feature].items()):
            points = sorted((_night(point[0]), *point[1:]) for point in points if _night(point[0]) in shown)
            x = [point[0] for point in points]
            axes.plot(*_broken(x, [point[1] for point in points], days), "-o", color=colours[method], markersize=3)
            # Each night's own threshold (they rise on small nights), as steps between nights.
            axes.plot(
                *_broken(x, [point[2] for point in points], days),
                drawstyle="steps-mid",
                color=colours[method],
                linestyle="--",
                linewidth=1,
                alpha=0.8,
            )
            alerts = [(point[0], point[1]) for point in points if point[3]]
            if alerts:
                axes.scatter(*zip(*alerts), s=70, color=ALERT, zorder=5)
        drifted = alerted_now(feature)
        if drifted:
            axes.set_facecolor("#fdecea")
            for spine in axes.spines.values():
                spine.set_edgecolor(ALERT)
                spine.set_linewidth(2)
        axes.set_title(
            _fitted_title(("DRIFT: " if drifted else "") + feature, figure, axes, fontsize=10),
            fontsize=10,
            color=ALERT if drifted else "black",
            fontweight="bold" if drifted else "normal",
        )
        axes.set_ylim(bottom=0)
        axes.tick_params(axis="both", labelsize=8)
        axes.grid(alpha=0.3)
        _date_axis(axes, figure, days, current=current, fontsize=7, label=False, say_current=False)
    for axes in grid[:, 0]:
        axes.set_ylabel("score", fontsize=8)
    for axes in list(grid.flat)[len(features) :]:
        axes.axis("off")
    # Each method's score (solid) and its own threshold (dashed, the same colour), then alerts.
    handles = []
    for method in methods:
        handles.append(Line2D([], [], color=colours[method], marker="o", markersize=3, label=f"{method} score"))
        handles.append(Line2D([], [], color=colours[method], linestyle="--", linewidth=1, label=f"{method} threshold"))
    handles.append(Line2D([], [], color=ALERT, marker="o", linestyle="", markersize=8, label="alert"))
    handles.append(
        Line2D([], [], color=CURRENT, linestyle=":", linewidth=1, label=f"this night ({current.date().isoformat()})")
    )
    figure.legend(handles=handles, loc="outside upper center", ncol=min(6, len(handles)), fontsize=8, frameon=False)
    save_figure(figure, path, layout=False)


def class_distribution(
    night: dict[str, float], reference: dict[str, float] | None, path: Destination, *, title: str, alert: bool = False
) -> None:
    """Share of each predicted class this night, beside the reference (the test split's predictions)."""
    names = sorted(set(night) | set(reference or {}), key=natural_key)
    positions = np.arange(len(names))
    width = 0.4 if reference else 0.8
    figure, axes = plt.subplots(figsize=(max(5.0, 0.5 * len(names) + 2.5), 3.6))
    if reference:
        axes.bar(
            positions - width / 2,
            [reference.get(name, 0.0) for name in names],
            width=width,
            color=REFERENCE,
            label="reference (test split)",
        )
    axes.bar(
        positions + (width / 2 if reference else 0),
        [night.get(name, 0.0) for name in names],
        width=width,
        color=ALERT if alert else SCORED,
        label="this night",
    )
    axes.set_xticks(positions)
    axes.set_xticklabels(names, rotation=45 if len(names) > 8 else 0, ha="right" if len(names) > 8 else "center")
    axes.set(ylabel="share of predictions", xlabel="predicted class")
    axes.set_title(title, color=ALERT if alert else "black", fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3, axis="y")
    save_figure(figure, path)


def value_distribution(
    night: np.ndarray, reference: np.ndarray | None, path: Destination, *, title: str, alert: bool = False
) -> None:
    """Histogram of predicted values this night, over the reference's (regression)."""
    figure, axes = plt.subplots(figsize=(6, 3.6))
    together = np.concatenate([night, reference if reference is not None else []]).astype(float)
    together = together[np.isfinite(together)]
    edges = np.histogram_bin_edges(together, bins=20) if len(together) else 10
    if reference is not None and len(reference):
        axes.hist(reference, bins=edges, density=True, color=REFERENCE, alpha=0.6, label="reference (test split)")
    axes.hist(
        night,
        bins=edges,
        density=True,
        histtype="step",
        linewidth=2,
        color=ALERT if alert else SCORED,
        label="this night",
    )
    axes.set(xlabel="predicted value", ylabel="density")
    axes.set_title(title, color=ALERT if alert else "black", fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    save_figure(figure, path)


def quality_over_nights(
    series: dict[str, list[tuple]],
    dates: Sequence[datetime.date],
    metric: str,
    path: Destination,
    *,
    reference: float | None = None,
    alerts: Sequence[bool] = (),
    current: datetime.date | None = None,
    trivial: dict[str, list[tuple]] | None = None,
    trivial_label: str = "",
) -> None:
    """Live accuracy (or MAE) per night and model, once labels arrived; drifted nights in red.

    Beside each model's line, dashed in its colour, what always predicting the training split's
    majority class (or its mean) scored on the same labeled rows; a night where the model did
    worse than that gets a red ring.

    Args:
        series: model version -> [(date, value, labeled), ...].
        reference: the model's score on its test split, drawn as a grey dashed line.
        trivial: model version -> [(date, value), ...] of the trivial predictor on that model's
            labeled rows; trivial_label names it ("always 'on time'").
    """
    days = [_night(date) for date in dates]
    shown = set(days)
    lower_is_better = metric != "accuracy"
    # Wider by the legend beside the plot.
    figure, axes = plt.subplots(figsize=(max(6.0, 0.55 * len(days) + 2) + 2.2, 3.6), layout="constrained")
    for day, alert in zip(days, alerts):
        if alert:
            axes.axvspan(day - NIGHT / 2, day + NIGHT / 2, color=ALERT, alpha=0.12, linewidth=0)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    several = len(series) > 1
    worse_drawn = False
    for index, (model, points) in enumerate(sorted(series.items())):
        colour = colours[index % len(colours)]
        points = sorted(
            (_night(point[0]), *point[1:]) for point in points if _night(point[0]) in shown and point[1] is not None
        )
        x = [point[0] for point in points]
        axes.plot(
            *_broken(x, [point[1] for point in points], days), "-o", markersize=4, color=colour, label=f"model {model}"
        )
        for day, value, labeled in points:
            axes.annotate(
                f"n={labeled}", (day, value), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7
            )
        baseline = {_night(day): value for day, value in (trivial or {}).get(model, []) if value is not None}
        if baseline:
            known = sorted(day for day in baseline if day in shown)
            axes.plot(
                *_broken(known, [baseline[day] for day in known], days),
                linestyle="--",
                marker="s",
                markersize=3,
                color=colour,
                alpha=0.8,
                label=f"{trivial_label or 'trivial'}" + (f" (model {model}'s rows)" if several else ""),
            )
            worse = [
                (day, value)
                for day, value, _ in points
                if day in baseline and (value > baseline[day] if lower_is_better else value < baseline[day])
            ]
            if worse:
                axes.scatter(
                    *zip(*worse),
                    s=110,
                    facecolors="none",
                    edgecolors=ALERT,
                    linewidths=2,
                    zorder=5,
                    label=None if worse_drawn else f"worse than {trivial_label or 'trivial'}",
                )
                worse_drawn = True
    if reference is not None:
        axes.axhline(reference, color="grey", linestyle="--", label=f"test split ({reference:.3f})")
    _date_axis(axes, figure, days, current=current)
    better = "lower is better" if lower_is_better else "higher is better"
    axes.set_ylabel(metric)
    axes.set_title(
        _fitted_title(f"Live {metric} per night ({better}; red: drift alert)", figure, axes, fontsize=11), fontsize=11
    )
    # From zero, so that 0.979 -> 1.0 looks like the small step it is; room above for the n= labels.
    values = [point[1] for points in series.values() for point in points if point[1] is not None]
    values += [point[1] for points in (trivial or {}).values() for point in points if point[1] is not None]
    top = 1.0 if metric == "accuracy" else max([*values, reference or 0.0, 1e-9])
    axes.set_ylim(0, top * 1.15)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes.grid(alpha=0.3)
    save_figure(figure, path, layout=False)


def _date_axis(
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
            forward, inverse = _compressed(runs, pad, _usual_step(days))
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
        current = _night(current)
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
    step = _usual_step(ordered)
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


def _broken(
    days: Sequence[datetime.datetime], values: Sequence, shown: Sequence[datetime.datetime]
) -> tuple[list, list]:
    """The points with a NaN wherever a line must not join two of them: a shown night between
    them has no value, or they are further apart than the shown nights' usual step (missing
    nights). Matplotlib leaves a NaN's segments out, so the line breaks there.
    """
    order = {day: index for index, day in enumerate(sorted(set(shown)))}
    step = _usual_step(shown)
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


def _usual_step(shown: Sequence[datetime.datetime]) -> float:
    """The usual days between shown nights (1 for nightly batches, 7 for weekly ones)."""
    days = sorted(set(shown))
    steps = [(later - earlier).days for earlier, later in zip(days, days[1:])]
    return max(1.0, float(np.median(steps))) if steps else 1.0


def _fitted_title(text: str, figure, axes, *, fontsize: float) -> str:
    """The title wrapped to the axes' width, two lines at most, cut with an ellipsis beyond."""
    width_points = figure.get_figwidth() * axes.get_position().width * 72
    # An average character is about 0.6 of the font size wide; a little margin for bold titles.
    characters = max(8, int(width_points / (0.62 * fontsize)))
    wrapper = textwrap.TextWrapper(width=characters, max_lines=2, placeholder="…", break_long_words=True)
    return "\n".join(wrapper.wrap(text)) or text


def _night(value) -> datetime.datetime:
    """A night as its midnight: datetimes, unlike dates, take the half days that centre bars and
    bands on a night (date - 12 hours is the same date). SQLite may hand back ISO strings."""
    if isinstance(value, datetime.datetime):
        return datetime.datetime.combine(value.date(), datetime.time())
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time())
    return datetime.datetime.combine(datetime.date.fromisoformat(str(value)[:10]), datetime.time())
