"""The nightly report's charts, read without looking at pixels: date axes whose labels never
overlap, titles that fit, missing nights drawn as gaps, the trivial predictor beside live quality.

Each chart function saves and closes its figure; the tests keep the figure instead (save_figure
patched) and draw it with the Agg backend to measure where its texts landed.
"""

from __future__ import annotations

import datetime
import itertools
import math

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.dates import ConciseDateFormatter, date2num

from pipeline.rendering import night_plots

APRIL = [datetime.date(2026, 4, 8) + datetime.timedelta(days=i) for i in range(7)]
JULY = [datetime.date(2026, 7, 1) + datetime.timedelta(days=i) for i in range(7)]
NIGHTS = APRIL + JULY  # a year of flights: nights in April, then nothing until July
LONG = "departure_delay_minutes_scheduled_versus_actual_at_the_gate:length"


@pytest.fixture
def figures(monkeypatch):
    """The figures the chart functions make, drawn, instead of saved as PNG."""
    made = []

    def keep(figure, path, **_):
        figure.canvas.draw()
        made.append(figure)

    monkeypatch.setattr(night_plots, "save_figure", keep)
    yield made
    for figure in made:
        night_plots.plt.close(figure)


def drift_series(nights, *, skip=()):
    rng = np.random.default_rng(0)
    return {
        feature: {
            method: [(night, float(rng.uniform(0, 0.3)), 0.2, False) for night in nights if night not in skip]
            for method in ("psi", "ks")
        }
        for feature in (LONG, "carrier", "origin", "distance", "(prediction)")
    }


def shown_axes(figure):
    return [axes for axes in figure.axes if axes.get_visible() and axes.axison]


def tick_boxes(axes):
    renderer = axes.figure.canvas.get_renderer()
    return [label.get_window_extent(renderer) for label in axes.get_xticklabels() if label.get_text().strip()]


def assert_apart(boxes, what):
    for first, second in itertools.combinations(boxes, 2):
        assert not first.overlaps(second), f"{what} overlap: {first} and {second}"


def test_drift_charts_have_date_axes_whose_labels_never_overlap_and_titles_that_fit(figures):
    night_plots.drift_over_nights(drift_series(NIGHTS), NIGHTS, "unused.png", current=NIGHTS[-1])
    (figure,) = figures
    renderer = figure.canvas.get_renderer()
    page = figure.bbox
    charts = shown_axes(figure)
    assert len(charts) == 5
    for axes in charts:
        assert isinstance(axes.xaxis.get_major_formatter(), ConciseDateFormatter)
        labels = [label.get_text() for label in axes.get_xticklabels() if label.get_text().strip()]
        assert len(labels) >= 2 and not any(":" in label for label in labels), labels  # dates, never hours
        assert_apart(tick_boxes(axes), "tick labels")
        title = axes.title.get_window_extent(renderer)
        assert page.x0 <= title.x0 and title.x1 <= page.x1 and title.y1 <= page.y1, axes.title.get_text()
    # A long feature name is wrapped, not cut off at the figure's edge or run into its neighbour.
    assert any("\n" in axes.get_title() for axes in charts)
    assert_apart([axes.title.get_window_extent(renderer) for axes in charts], "titles")


@pytest.mark.parametrize("count", [1, 2, 5, 14, 60, 400])
def test_rows_chart_labels_never_overlap_however_many_nights(figures, count):
    nights = [datetime.date(2025, 12, 20) + datetime.timedelta(days=i) for i in range(count)]
    night_plots.rows_per_night(
        nights, [100] * count, [3] * count, "unused.png", alerts=[False] * count, current=nights[-1]
    )
    (axes,) = figures[0].axes
    labels = [label.get_text() for label in axes.get_xticklabels() if label.get_text().strip()]
    assert labels and not any(":" in label for label in labels), labels
    assert_apart(tick_boxes(axes), "tick labels")
    if count <= 2:
        # A night or two: each gets its own date, not a span of hours.
        assert [label.splitlines()[0] for label in labels] == [night.strftime("%b %d") for night in nights]


def test_missing_nights_are_a_gap_not_neighbours(figures):
    missing = JULY[2]  # no carrier figure on a night that is shown: its line breaks there too
    series = drift_series(NIGHTS)
    series["carrier"] = {method: [p for p in points if p[0] != missing] for method, points in series["carrier"].items()}
    night_plots.drift_over_nights(series, NIGHTS, "unused.png", current=NIGHTS[-1])
    (figure,) = figures
    carrier = next(axes for axes in shown_axes(figure) if axes.get_title() == "carrier")
    score = carrier.get_lines()[0]  # psi and ks scores and thresholds; the first is a score
    x = date2num(score.get_xdata())
    y = np.asarray(score.get_ydata(), dtype=float)

    def broken_between(before, after):
        inside = (x > date2num(before)) & (x < date2num(after))
        return inside.any() and np.isnan(y[inside]).all()

    assert broken_between(APRIL[-1], JULY[0])
    assert broken_between(JULY[1], JULY[3])
    assert not broken_between(APRIL[0], APRIL[1])  # neighbouring nights stay joined
    # The 77 days between are squeezed to a narrow band that says so; each run keeps true time.
    assert any(text.get_text() == "77 days without a night" for text in carrier.texts)
    to_screen = carrier.transData.transform
    at = {night: to_screen((date2num(night), 0))[0] for night in (APRIL[0], APRIL[1], APRIL[-1], JULY[0])}
    one_night = at[APRIL[1]] - at[APRIL[0]]
    assert one_night > 0 and at[JULY[0]] - at[APRIL[-1]] < 4 * one_night
    assert math.isclose(at[APRIL[-1]] - at[APRIL[0]], 6 * one_night, rel_tol=1e-6)


def test_live_accuracy_is_drawn_beside_always_the_majority_class(figures):
    nights = APRIL
    model = [(night, 0.91, 450) for night in nights]
    majority = [(night, 0.918 if index % 2 else 0.90) for index, night in enumerate(nights)]
    night_plots.quality_over_nights(
        {"m1": model},
        nights,
        "accuracy",
        "unused.png",
        reference=0.93,
        current=nights[-1],
        trivial={"m1": majority},
        trivial_label="always 'on time'",
    )
    (axes,) = figures[0].axes
    assert "always 'on time'" in [line.get_label() for line in axes.get_lines()]
    rings = [c for c in axes.collections if isinstance(c, PathCollection) and c.get_label().startswith("worse than")]
    worse = sum(1 for _, value in majority if value > 0.91)
    assert len(rings) == 1 and len(rings[0].get_offsets()) == worse == 3
    assert isinstance(axes.xaxis.get_major_formatter(), ConciseDateFormatter)
    assert_apart(tick_boxes(axes), "tick labels")


def test_mae_worse_than_the_mean_is_marked_too(figures):
    nights = APRIL[:3]
    night_plots.quality_over_nights(
        {"m1": [(night, 5.0, 10) for night in nights]},
        nights,
        "mae",
        "unused.png",
        trivial={"m1": [(nights[0], 4.0), (nights[1], 6.0), (nights[2], 6.0)]},
        trivial_label="always 12.5 (the training mean)",
    )
    (axes,) = figures[0].axes
    rings = [c for c in axes.collections if isinstance(c, PathCollection) and c.get_label().startswith("worse than")]
    assert len(rings) == 1 and len(rings[0].get_offsets()) == 1  # only the night the mean did better
