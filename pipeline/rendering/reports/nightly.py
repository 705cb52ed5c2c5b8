"""The nightly report: one night's rows, drift, predicted classes and live quality against the
nights before it, read from the prediction log's database, one self-contained page.

Red marks a drifted night. The plots come from :mod:`pipeline.rendering.plots`.
"""

from __future__ import annotations

import datetime
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.common.formatting import format_number, natural_key
from pipeline.rendering import plots
from pipeline.rendering.reports.markup import (
    Html,
    as_count,
    as_float,
    drawn,
    escape,
    image,
    page,
    section,
    table,
    write,
)
from pipeline.store.tables import batches as batches_table
from pipeline.store.tables import drift as drift_table
from pipeline.store.tables import model_versions, prediction_quality_daily_view
from pipeline.store.tables import predictions as predictions_table

PREDICTION_FEATURE = "(prediction)"  # pipeline.stages.monitoring.PREDICTION, without importing scipy's stats


def nightly_report(
    out_dir_or_path, engine: sa.Engine, *, batch_date: datetime.date, model_version: str, nights: int = 14
) -> Path:
    """Write a night's report: rows, drift, predicted classes and live quality over recent nights.

    Args:
        out_dir_or_path: a folder (the report is `report-<model_version>.html` inside) or an
            .html path.
        engine: the prediction log's database.
        batch_date: the night the report is about; the charts show the `nights` nights up to it.
        model_version: the model that scored the night.

    Returns:
        The report's path.
    """
    if nights < 1:
        raise ValueError(f"nights must be at least 1, not {nights}")
    target = Path(out_dir_or_path)
    if target.suffix.lower() != ".html":
        target = target / f"report-{model_version}.html"
    data = _nightly_data(engine, batch_date, model_version, nights)
    parts = [
        _nightly_header(data),
        section("Rows per night", _rows_section(data)),
        section("Drift per feature", _drift_section(data)),
        section(
            "Predicted classes" if data.task == "classification" else "Predicted values", _distribution_section(data)
        ),
        section("Live quality", _quality_section(data)),
    ]
    return write(target, page(f"Nightly report {batch_date.isoformat()}", parts))


class _Night:
    """What the nightly report shows, read from the database in one place."""

    def __init__(self, **values):
        self.__dict__.update(values)


def _nightly_data(engine: sa.Engine, batch_date: datetime.date, model_version: str, nights: int) -> _Night:
    with engine.connect() as connection:
        dates = [
            row[0]
            for row in connection.execute(
                sa.select(batches_table.c.batch_date)
                .where(batches_table.c.batch_date <= batch_date)
                .distinct()
                .order_by(batches_table.c.batch_date.desc())
                .limit(nights)
            )
        ]
        if batch_date not in dates:
            dates = [batch_date, *dates][:nights]
        dates = sorted(dates)
        batch_rows = [
            dict(row._mapping)
            for row in connection.execute(
                sa.select(batches_table)
                .where(batches_table.c.batch_date.in_(dates))
                .order_by(batches_table.c.batch_date, batches_table.c.loaded_at)
            )
        ]
        drift_rows = [
            dict(row._mapping)
            for row in connection.execute(
                sa.select(
                    drift_table.c.batch_date,
                    drift_table.c.model_version,
                    drift_table.c.feature,
                    drift_table.c.method,
                    drift_table.c.score,
                    drift_table.c.threshold,
                    drift_table.c.alert,
                )
                .where(drift_table.c.batch_date.in_(dates))
                .order_by(drift_table.c.batch_date, drift_table.c.id)
            )
        ]
        model = connection.execute(
            sa.select(model_versions.c.task, model_versions.c.evaluation_path, model_versions.c.metrics).where(
                model_versions.c.version == model_version
            )
        ).first()
        task = (model.task if model is not None else None) or "classification"
        this_night = (predictions_table.c.batch_date == batch_date) & (
            predictions_table.c.model_version == model_version
        )
        if task == "classification":
            counts = {
                str(row[0]): int(row[1])
                for row in connection.execute(
                    sa.select(predictions_table.c.prediction, sa.func.count())
                    .where(this_night)
                    .group_by(predictions_table.c.prediction)
                )
            }
            values = None
        else:
            counts = {}
            values = np.array(
                [
                    row[0]
                    for row in connection.execute(sa.select(predictions_table.c.score).where(this_night))
                    if row[0] is not None
                ],
                dtype=float,
            )
        quality_rows = [
            dict(row._mapping)
            for row in connection.execute(
                sa.select(prediction_quality_daily_view)
                .where(prediction_quality_daily_view.c.batch_date.in_(dates))
                .order_by(prediction_quality_daily_view.c.batch_date)
            )
        ]
    chosen = _model_per_night(batch_rows, drift_rows, model_version)
    drift_rows = [row for row in drift_rows if chosen.get(row["batch_date"]) == row["model_version"]]
    metrics = model.metrics if model is not None else None
    if isinstance(metrics, str):
        metrics = json.loads(metrics)
    return _Night(
        batch_date=batch_date,
        model_version=model_version,
        dates=dates,
        task=task,
        batches=batch_rows,
        drift=drift_rows,
        chosen=chosen,
        counts=counts,
        values=values,
        reference=_reference_predictions(model.evaluation_path if model is not None else None, task),
        quality=quality_rows,
        test_metrics=(metrics or {}).get("test", {}),
    )


def _model_per_night(batch_rows: list[dict], drift_rows: list[dict], model_version: str) -> dict:
    """The model whose figures a night shows: this report's model where it scored the night, else
    the model that scored it last (after a rollback, older nights were scored by another model)."""
    chosen = {}
    for row in batch_rows:  # ordered by loaded_at: the last one wins
        chosen[row["batch_date"]] = row["model_version"]
    for row in [*batch_rows, *drift_rows]:
        if row["model_version"] == model_version:
            chosen[row["batch_date"]] = model_version
    for row in drift_rows:
        chosen.setdefault(row["batch_date"], row["model_version"])
    return chosen


def _reference_predictions(evaluation_path: str | None, task: str):
    """What the model predicted on its test split: the reference MonitorDrift compares with.
    None when the evaluation folder is gone (the report then shows the night alone)."""
    if not evaluation_path:
        return None
    path = Path(evaluation_path) / "test_predictions.parquet"
    try:
        predicted = pd.read_parquet(path, columns=["prediction"])["prediction"]
    except (OSError, ValueError, KeyError):
        return None
    if task == "classification":
        shares = predicted.astype(str).value_counts(normalize=True)
        return {str(name): float(share) for name, share in shares.items()}
    return predicted.to_numpy(dtype=float)


def _alerts_by_night(data: _Night) -> dict:
    alerts = defaultdict(list)
    for row in data.drift:
        if row["alert"]:
            alerts[row["batch_date"]].append(row)
    return alerts


def _nightly_header(data: _Night) -> Html:
    tonight = [row for row in data.drift if row["batch_date"] == data.batch_date]
    alerts = [row for row in tonight if row["alert"]]
    batch = next(
        (
            row
            for row in data.batches
            if row["batch_date"] == data.batch_date and row["model_version"] == data.model_version
        ),
        None,
    )
    scored = f"{batch['rows_scored']} rows scored, {batch['rows_rejected']} rejected" if batch else "no batch loaded"
    if alerts:
        features = sorted({row["feature"] for row in alerts})
        banner = (
            f'<div class="banner bad"><strong>DRIFT ALERT</strong>: {len(alerts)} alert(s) in '
            f"{escape(', '.join(features))}. This night's inputs or predictions differ from the "
            "training data beyond the thresholds: look before trusting its predictions.</div>"
        )
    elif batch is not None and batch["status"] == "empty":
        banner = '<div class="banner neutral"><strong>Empty night</strong>: no rows arrived.</div>'
    elif tonight:
        banner = (
            f'<div class="banner good"><strong>No drift</strong>: {len({r["feature"] for r in tonight})} '
            "monitored features within their thresholds.</div>"
        )
    else:
        banner = '<div class="banner neutral"><strong>No drift figures</strong> for this night.</div>'
    return Html(
        f"<h1>Nightly report {escape(data.batch_date.isoformat())}</h1>"
        f'<p class="subtitle">Model {escape(data.model_version)} ({escape(data.task)}); {escape(scored)}. '
        f"Charts show the last {len(data.dates)} night(s) with batches.</p>{banner}"
    )


def _rows_section(data: _Night) -> Html:
    alerts = _alerts_by_night(data)
    per_night = {}
    for row in data.batches:
        if data.chosen.get(row["batch_date"]) == row["model_version"]:
            per_night[row["batch_date"]] = row
    dates = data.dates
    png = drawn(
        lambda out: plots.rows_per_night(
            dates,
            [as_count(per_night.get(d, {}).get("rows_scored")) for d in dates],
            [as_count(per_night.get(d, {}).get("rows_rejected")) for d in dates],
            out,
            alerts=[bool(alerts.get(d)) for d in dates],
            current=data.batch_date,
        )
    )
    quality = {(row["batch_date"], row["model_version"]): row for row in data.quality}
    metric = "accuracy" if data.task == "classification" else "mae"
    rows, classes = [], []
    for row in sorted(data.batches, key=lambda r: (r["batch_date"], r["model_version"]), reverse=True):
        shown = data.chosen.get(row["batch_date"]) == row["model_version"]  # the model whose drift this night shows
        night_alerts = alerts.get(row["batch_date"], []) if shown else []
        live = quality.get((row["batch_date"], row["model_version"]), {})
        rows.append(
            [
                row["batch_date"].isoformat(),
                row["model_version"],
                row["rows_in"],
                row["rows_rejected"],
                row["rows_scored"],
                row["status"],
                ", ".join(sorted({a["feature"] for a in night_alerts})) or "none",
                live.get("labeled") or 0,
                format_number(live.get(metric), missing=""),
            ]
        )
        classes.append("alert" if night_alerts else "")
    listing = table(
        ["night", "model", "rows in", "rejected", "scored", "status", "drift alerts", "labeled", metric],
        rows,
        numeric=(2, 3, 4, 7, 8),
        wrap=(6,),
        row_classes=classes,
    )
    return image(png, "rows scored and rejected per night; drifted nights outlined in red") + listing


def _drift_section(data: _Night) -> Html:
    if not data.drift:
        return Html("<p>No drift figures for these nights (empty nights are not compared).</p>")
    series = defaultdict(lambda: defaultdict(list))
    for row in data.drift:
        series[row["feature"]][row["method"]].append(
            (row["batch_date"], as_float(row["score"]), as_float(row["threshold"]), bool(row["alert"]))
        )
    png = drawn(
        lambda out: plots.drift_over_nights(
            {k: dict(v) for k, v in series.items()}, data.dates, out, current=data.batch_date
        )
    )
    tonight = sorted(
        (row for row in data.drift if row["batch_date"] == data.batch_date),
        key=lambda row: (not row["alert"], row["feature"], row["method"]),
    )
    rows = [
        [
            row["feature"],
            row["method"],
            format_number(row["score"], missing=""),
            format_number(row["threshold"], missing=""),
            "ALERT" if row["alert"] else "ok",
        ]
        for row in tonight
    ]
    listing = (
        table(
            ["feature", "method", "score", "threshold", "alert"],
            rows,
            numeric=(2, 3),
            row_classes=["alert" if row["alert"] else "" for row in tonight],
        )
        if rows
        else Html("<p>No drift figures for this night.</p>")
    )
    return (
        image(png, "drift score per feature and night with its threshold; alerts in red")
        + Html(
            f'<p class="note">PSI and KS for numbers, PSI and Jensen-Shannon (js) for categories; '
            f"{escape(PREDICTION_FEATURE)} is the predicted-class distribution. Thresholds rise on small "
            "nights to what sampling noise reaches.</p><h3>This night</h3>"
        )
        + listing
    )


def _distribution_section(data: _Night) -> Html:
    check = next(
        (row for row in data.drift if row["batch_date"] == data.batch_date and row["feature"] == PREDICTION_FEATURE),
        None,
    )
    alert = bool(check and check["alert"])
    verdict = (
        f"PSI {format_number(check['score'], missing='')} "
        f"against threshold {format_number(check['threshold'], missing='')}{': ALERT' if alert else ''}"
        if check
        else "no predicted-class check this night"
    )
    reference = data.reference
    if data.task == "classification":
        total = sum(data.counts.values())
        if not total:
            return Html("<p>No predictions this night.</p>")
        night = {name: count / total for name, count in data.counts.items()}
        png = drawn(
            lambda out: plots.class_distribution(
                night, reference, out, alert=alert, title=f"Predicted classes, {total} rows ({verdict})"
            )
        )
        names = sorted(set(night) | set(reference or {}), key=natural_key)
        rows = [
            [
                name,
                data.counts.get(name, 0),
                format_number(night.get(name, 0.0), missing=""),
                format_number(reference.get(name, 0.0), missing="") if reference else "",
            ]
            for name in names
        ]
        listing = table(["class", "predictions", "share", "reference share"], rows, numeric=(1, 2, 3))
    else:
        if data.values is None or not len(data.values):
            return Html("<p>No predictions this night.</p>")
        png = drawn(
            lambda out: plots.value_distribution(
                data.values, reference, out, alert=alert, title=f"Predicted values, {len(data.values)} rows ({verdict})"
            )
        )
        listing = table(
            ["", "rows", "mean", "median", "min", "max"],
            [
                [
                    name,
                    len(v),
                    format_number(np.mean(v), missing=""),
                    format_number(np.median(v), missing=""),
                    format_number(np.min(v), missing=""),
                    format_number(np.max(v), missing=""),
                ]
                for name, v in (("this night", data.values), ("reference", reference))
                if v is not None and len(v)
            ],
            numeric=range(1, 6),
        )
    source = (
        "Reference: the model's predictions on its test split."
        if reference is not None and len(reference)
        else "The model's test predictions are not available: the night is shown alone."
    )
    return (
        image(png, "predicted class distribution: this night against the reference")
        + Html(f'<p class="note">{escape(source)}</p>')
        + listing
    )


def _quality_section(data: _Night) -> Html:
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
    alerts = _alerts_by_night(data)
    reference = data.test_metrics.get(metric)
    png = drawn(
        lambda out: plots.quality_over_nights(
            dict(series),
            data.dates,
            metric,
            out,
            reference=as_float(reference) if reference is not None else None,
            alerts=[bool(alerts.get(d)) for d in data.dates],
            current=data.batch_date,
        )
    )
    listing = table(
        ["night", "model", "predicted", "labeled", metric],
        [
            [
                row["batch_date"].isoformat(),
                row["model_version"],
                row.get("predicted"),
                row["labeled"],
                format_number(row[metric], missing=""),
            ]
            for row in sorted(rows, key=lambda r: r["batch_date"], reverse=True)
        ],
        numeric=(2, 3, 4),
        row_classes=[
            "alert" if alerts.get(r["batch_date"]) else ""
            for r in sorted(rows, key=lambda r: r["batch_date"], reverse=True)
        ],
    )
    return (
        image(png, f"live {metric} per night once labels arrived")
        + Html('<p class="note">Labels arrive later: the newest nights may have none yet. n: labeled predictions.</p>')
        + listing
    )
