"""A night's plots for its report: rows, drift and predictions over the nights, live quality.

Shares pipeline/rendering/plots.py's colours and saving; red means "look here": an alert, a
drifted night.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import numpy as np
from matplotlib.lines import Line2D

# pyplot through plots.py, which picks the display-less backend first.
from pipeline.rendering.plots import ALERT, REFERENCE, REJECTED, SCORED, Destination, natural_key, plt, save_figure


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
    positions = np.arange(len(dates))
    figure, axes = plt.subplots(figsize=(max(6.0, 0.55 * len(dates) + 2) + 1.0, 3.6))
    axes.bar(positions, scored, color=SCORED, label="scored")
    axes.bar(positions, rejected, bottom=scored, color=REJECTED, label="rejected")
    totals = np.add(scored, rejected)
    top = max(int(totals.max()) if len(totals) else 0, 1)
    for position, alert, total in zip(positions, alerts, totals):
        if alert:
            axes.bar(position, max(total, top * 0.02), fill=False, edgecolor=ALERT, linewidth=2.5)
            axes.text(position, total + top * 0.03, "DRIFT", color=ALERT, ha="center", fontsize=8, fontweight="bold")
    _night_axis(axes, dates, alerts, current)
    axes.set(ylabel="rows", ylim=(0, top * 1.18), title="Rows per night")
    # Beside the plot, never over the first night's bar.
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes.grid(alpha=0.3, axis="y")
    save_figure(figure, path)


def drift_over_nights(
    series: dict[str, dict[str, list[tuple]]],
    dates: Sequence[datetime.date],
    path: Destination,
    *,
    current: datetime.date,
) -> None:
    """One small chart per feature: each method's score per night, its threshold, alerts in red.

    Features that alert this night come first, on a red background.

    Args:
        series: feature -> method -> [(date, score, threshold, alert), ...].
        dates: the nights shown, oldest first (the x axis of every chart).
    """

    def alerted_now(feature: str) -> bool:
        return any(point[3] and point[0] == current for points in series[feature].values() for point in points)

    features = sorted(series, key=lambda feature: (not alerted_now(feature), feature))
    methods = sorted({method for feature in features for method in series[feature]})
    colours = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    columns = min(3, max(1, len(features)))
    rows = -(-len(features) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(4.3 * columns, 2.6 * rows + 0.7), squeeze=False)
    position = {date: index for index, date in enumerate(dates)}
    night_alerts = {date: False for date in dates}
    for axes, feature in zip(grid.flat, features):
        for method, points in sorted(series[feature].items()):
            points = sorted(point for point in points if point[0] in position)
            x = [position[point[0]] for point in points]
            axes.plot(x, [point[1] for point in points], "-o", color=colours[method], markersize=3)
            axes.step(
                x,
                [point[2] for point in points],
                where="mid",
                color=colours[method],
                linestyle="--",
                linewidth=1,
                alpha=0.8,
            )
            alerts = [(xi, point[1]) for xi, point in zip(x, points) if point[3]]
            if alerts:
                axes.scatter(*zip(*alerts), s=70, color=ALERT, zorder=5)
            for point in points:
                night_alerts[point[0]] |= bool(point[3])
        drifted = alerted_now(feature)
        if drifted:
            axes.set_facecolor("#fdecea")
            for spine in axes.spines.values():
                spine.set_edgecolor(ALERT)
                spine.set_linewidth(2)
        axes.set_title(
            ("DRIFT: " if drifted else "") + feature,
            fontsize=10,
            color=ALERT if drifted else "black",
            fontweight="bold" if drifted else "normal",
        )
        axes.set_ylim(bottom=0)
        axes.tick_params(axis="both", labelsize=8)
        axes.grid(alpha=0.3)
    for axes in grid[:, 0]:
        axes.set_ylabel("score", fontsize=8)
    for axes in grid.flat[: len(features)]:
        _night_axis(axes, dates, [night_alerts[date] for date in dates], current, fontsize=7, label=False)
    for axes in list(grid.flat)[len(features) :]:
        axes.axis("off")
    # Each method's score (solid) and its own threshold (dashed, the same colour), then alerts.
    handles = []
    for method in methods:
        handles.append(Line2D([], [], color=colours[method], marker="o", markersize=3, label=f"{method} score"))
        handles.append(Line2D([], [], color=colours[method], linestyle="--", linewidth=1, label=f"{method} threshold"))
    handles.append(Line2D([], [], color=ALERT, marker="o", linestyle="", markersize=8, label="alert"))
    per_row = 6
    legend_rows = -(-len(handles) // per_row)
    figure.legend(
        handles=handles, loc="upper center", ncol=per_row, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 1.0)
    )
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.25 * legend_rows / (2.6 * rows + 0.7)))
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
) -> None:
    """Live accuracy (or MAE) per night and model, once labels arrived; drifted nights in red.

    Args:
        series: model version -> [(date, value, labeled), ...].
        reference: the model's score on its test split, drawn as a dashed line.
    """
    position = {date: index for index, date in enumerate(dates)}
    # Wider by the legend beside the plot.
    figure, axes = plt.subplots(figsize=(max(6.0, 0.55 * len(dates) + 2) + 2.2, 3.6))
    for model, points in sorted(series.items()):
        points = sorted(point for point in points if point[0] in position and point[1] is not None)
        x = [position[point[0]] for point in points]
        axes.plot(x, [point[1] for point in points], "-o", markersize=4, label=f"model {model}")
        for xi, (_, value, labeled) in zip(x, points):
            axes.annotate(
                f"n={labeled}", (xi, value), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7
            )
    if reference is not None:
        axes.axhline(reference, color="grey", linestyle="--", label=f"test split ({reference:.3f})")
    for index, alert in enumerate(alerts):
        if alert:
            axes.axvspan(index - 0.5, index + 0.5, color=ALERT, alpha=0.12)
    _night_axis(axes, dates, alerts, current)
    better = "higher is better" if metric == "accuracy" else "lower is better"
    axes.set(ylabel=metric, title=f"Live {metric} per night ({better}; red: drift alert)")
    # From zero, so that 0.979 -> 1.0 looks like the small step it is; room above for the n= labels.
    values = [point[1] for points in series.values() for point in points if point[1] is not None]
    top = 1.0 if metric == "accuracy" else max([*values, reference or 0.0, 1e-9])
    axes.set_ylim(0, top * 1.15)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes.grid(alpha=0.3)
    save_figure(figure, path)


def _night_axis(
    axes, dates: Sequence[datetime.date], alerts: Sequence[bool], current, *, fontsize: int = 8, label: bool = True
) -> None:
    """Nights on the x axis: month-day when they share a year; drifted nights red, this night marked."""
    years = sorted({date.year for date in dates if hasattr(date, "year")})
    short = len(years) == 1 and all(hasattr(date, "strftime") for date in dates)
    texts = [date.strftime("%m-%d") if short else _day(date) for date in dates]
    texts = [f"{text}\nthis night" if date == current else text for text, date in zip(texts, dates)]
    axes.set_xticks(range(len(dates)))
    axes.set_xticklabels(texts, fontsize=fontsize, rotation=0 if short else 45, ha="center" if short else "right")
    axes.set_xlim(-0.5, len(dates) - 0.5)
    for tick, alert, date in zip(axes.get_xticklabels(), alerts, dates):
        if alert:
            tick.set_color(ALERT)
        if alert or date == current:
            tick.set_fontweight("bold")
    if label:
        axes.set_xlabel(f"night ({years[0]})" if short else "night")


def _day(date) -> str:
    return date.isoformat() if hasattr(date, "isoformat") else str(date)
