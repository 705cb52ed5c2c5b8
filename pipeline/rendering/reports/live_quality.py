"""The nightly report's live quality: each night's accuracy (or MAE) once its labels arrived, beside
what always answering the training majority class (or mean) scores on the same rows, and, where
`overnight serve` answered that day, the night's files and the online answers apart.
"""

from __future__ import annotations

from collections import defaultdict

from pipeline.common.formatting import format_number
from pipeline.rendering import night_plots
from pipeline.rendering.reports.markup import Html, as_float, drawn, escape, image, table
from pipeline.store.night_history import NightHistory

__all__ = ["quality_section"]


def quality_section(data: NightHistory) -> Html:
    """Live quality per night once labels arrived, beside the trivial predictor's on the same rows."""
    metric = "accuracy" if data.task == "classification" else "mae"
    rows = [row for row in data.quality if row.get(metric) is not None and (row.get("labeled") or 0) > 0]
    if not rows:
        return Html(
            "<p>No labels have arrived for these nights yet (labels come back through "
            "<code>feedback/&lt;date&gt;/</code>, usually a day later).</p>"
        )
    series = defaultdict(list)
    for row in rows:
        series[row["model_version"]].append((row["batch_date"], as_float(row[metric]), int(row["labeled"])))
    # The trivial predictor on the same labeled rows: the line a model's must stay on the right side of.
    trivial = {
        (row["batch_date"], row["model_version"]): as_float(row[metric])
        for row in data.trivial_quality
        if row.get(metric) is not None
    }
    trivial_series = defaultdict(list)
    for (night, model), value in trivial.items():
        trivial_series[model].append((night, value))
    name = data.trivial.name if data.trivial is not None else ""
    alerts = data.failing_alerts()
    reference = data.test_metrics.get(metric)
    png = drawn(
        lambda out: night_plots.quality_over_nights(
            dict(series),
            data.dates,
            metric,
            out,
            reference=as_float(reference) if reference is not None else None,
            alerts=[bool(alerts.get(d)) for d in data.dates],
            current=data.batch_date,
            trivial=dict(trivial_series),
            trivial_label=name,
        )
    )
    newest_first = sorted(rows, key=lambda r: r["batch_date"], reverse=True)
    headers = ["night", "model", "predicted", "labeled", metric]
    apart = _by_origin(data, metric)
    if apart:  # `overnight serve` answered on some of these days: its rows and the night's apart too
        headers += ["files: labeled", f"files: {metric}", "online: labeled", f"online: {metric}"]
    listing_rows, classes = [], []
    for row in newest_first:
        baseline = trivial.get((row["batch_date"], row["model_version"]))
        cells = [
            row["batch_date"].isoformat(),
            row["model_version"],
            row.get("predicted"),
            row["labeled"],
            format_number(row[metric], missing=""),
        ]
        if apart:
            for origin in ("batch", "online"):
                labeled, value = apart.get((row["batch_date"], row["model_version"], origin), (0, None))
                cells += [labeled, format_number(value, missing="")]
        if name:
            cells += [format_number(baseline, missing=""), _margin(as_float(row[metric]), baseline, metric)]
        listing_rows.append(cells)
        worse = baseline is not None and _worse(as_float(row[metric]), baseline, metric)
        classes.append("alert" if alerts.get(row["batch_date"]) else "below" if worse else "")
    if name:
        headers += [name, "model vs it"]
    listing = table(headers, listing_rows, numeric=range(2, len(headers)), row_classes=classes)
    return (
        image(png, f"live {metric} per night once labels arrived, beside {name or 'the test split'}")
        + _verdict(data, newest_first, trivial, metric)
        + Html('<p class="note">Labels arrive later: the newest nights may have none yet. n: labeled predictions.</p>')
        + listing
    )


def _verdict(data: NightHistory, newest_first: list[dict], trivial: dict, metric: str) -> Html:
    """The newest labeled night in numbers beside the trivial predictor's, worse said in red:
    "live accuracy 0.910; always 'on time': 0.918", which 0.910 alone would hide."""
    ours = [row for row in newest_first if row["model_version"] == data.model_version]
    row = (ours or newest_first)[0]
    value = as_float(row[metric])
    shown = "MAE" if metric == "mae" else metric
    where = f"Night {row['batch_date'].isoformat()} (model {row['model_version']}, {row['labeled']} labeled)"
    if data.trivial is None:
        return Html(
            f'<p class="verdict">{escape(where)}: live {shown} {escape(format_number(value))}. '
            '<span class="note">What always predicting the training split\'s '
            f"{'most frequent class' if metric == 'accuracy' else 'mean'} would score is not known "
            "(the model's split or preprocessor file is gone).</span></p>"
        )
    name = data.trivial.name
    baseline = trivial.get((row["batch_date"], row["model_version"]))
    numbers = f"{where}: live {shown} {format_number(value)}; {name}: {format_number(baseline, missing='n/a')}"
    what = "the training split's most frequent class" if metric == "accuracy" else "the training split's mean"
    if baseline is None:
        return Html(f'<p class="verdict">{escape(numbers)}.</p>')
    gap = abs(value - baseline)
    if _worse(value, baseline, metric):
        return Html(
            f'<p class="verdict bad">{escape(numbers)}. <strong>WORSE than {escape(name)}</strong> '
            f"({escape(what)}) by {escape(format_number(gap))}: on this night the model did worse than a "
            "constant answer.</p>"
        )
    if gap == 0:
        return Html(f'<p class="verdict bad">{escape(numbers)}. <strong>No better than {escape(name)}</strong>.</p>')
    return Html(
        f'<p class="verdict good">{escape(numbers)}: {escape(format_number(gap))} better than {escape(name)} '
        f"({escape(what)}).</p>"
    )


def _worse(value: float, baseline: float, metric: str) -> bool:
    return value > baseline if metric == "mae" else value < baseline


def _margin(value: float, baseline: float | None, metric: str) -> str:
    """e.g. "+0.035 better", "-0.008 WORSE": the model's lead over the trivial predictor."""
    if baseline is None:
        return ""
    lead = baseline - value if metric == "mae" else value - baseline
    return f"{lead:+.3f} {'WORSE' if lead < 0 else 'better' if lead > 0 else 'same'}"


def _by_origin(data: NightHistory, metric: str) -> dict[tuple, tuple[int, float | None]]:
    """{(night, model, origin): (labeled, metric)}; empty when no night shown had an online answer
    labeled (the table then keeps its plain columns)."""
    apart = {
        (row["batch_date"], row["model_version"], row["origin"]): (int(row["labeled"]), as_float(row[metric]))
        for row in data.quality_by_origin
        if row.get(metric) is not None
    }
    return apart if any(origin == "online" for _, _, origin in apart) else {}
