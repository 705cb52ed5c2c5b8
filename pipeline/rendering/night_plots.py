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
from matplotlib.lines import Line2D

from pipeline.rendering.night_axis import CURRENT, NIGHT, as_night, broken, date_axis

# pyplot through plots.py, which picks the display-less backend first.
from pipeline.rendering.plots import ALERT, REFERENCE, REJECTED, SCORED, Destination, natural_key, plt, save_figure

BAR_DAYS = 0.8  # a night's bar is most of its day wide: neighbouring nights stay apart


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
    days = [as_night(date) for date in dates]
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
    date_axis(axes, figure, days, current=current)
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
    current = as_night(current)

    def alerted_now(feature: str) -> bool:
        return any(
            point[3] and as_night(point[0]) == current for points in series[feature].values() for point in points
        )

    days = [as_night(date) for date in dates]
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
            points = sorted((as_night(point[0]), *point[1:]) for point in points if as_night(point[0]) in shown)
            x = [point[0] for point in points]
            axes.plot(*broken(x, [point[1] for point in points], days), "-o", color=colours[method], markersize=3)
            # Each night's own threshold (they rise on small nights), as steps between nights.
            axes.plot(
                *broken(x, [point[2] for point in points], days),
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
        date_axis(axes, figure, days, current=current, fontsize=7, label=False, say_current=False)
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
    days = [as_night(date) for date in dates]
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
            (as_night(point[0]), *point[1:]) for point in points if as_night(point[0]) in shown and point[1] is not None
        )
        x = [point[0] for point in points]
        axes.plot(
            *broken(x, [point[1] for point in points], days), "-o", markersize=4, color=colour, label=f"model {model}"
        )
        for day, value, labeled in points:
            axes.annotate(
                f"n={labeled}", (day, value), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7
            )
        baseline = {as_night(day): value for day, value in (trivial or {}).get(model, []) if value is not None}
        if baseline:
            known = sorted(day for day in baseline if day in shown)
            axes.plot(
                *broken(known, [baseline[day] for day in known], days),
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
    date_axis(axes, figure, days, current=current)
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


def _fitted_title(text: str, figure, axes, *, fontsize: float) -> str:
    """The title wrapped to the axes' width, two lines at most, cut with an ellipsis beyond."""
    width_points = figure.get_figwidth() * axes.get_position().width * 72
    # An average character is about 0.6 of the font size wide; a little margin for bold titles.
    characters = max(8, int(width_points / (0.62 * fontsize)))
    wrapper = textwrap.TextWrapper(width=characters, max_lines=2, placeholder="…", break_long_words=True)
    return "\n".join(wrapper.wrap(text)) or text
