"""The nightly report: one night's rows, drift, predicted classes and live quality against the
nights before it, read from the prediction log's database, one self-contained page.

Red marks a drifted night. The plots come from :mod:`pipeline.rendering.plots`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.common.columns import PREDICTION_FEATURE
from pipeline.common.formatting import format_number, natural_key
from pipeline.rendering import night_plots
from pipeline.rendering.reports.markup import Html, as_count, as_float, drawn, escape, image, page, section, table
from pipeline.store.night_history import NightHistory


def nightly_report(
    data: NightHistory,
    *,
    reference_predictions: pd.Series | None = None,
    drift_reference: str | None = None,
    annotators: pd.DataFrame | None = None,
    drift_notes: list[dict] | None = None,
    failures: Sequence[FailedStep] = (),
) -> str:
    """A night's page: rows, drift, predicted classes and live quality over recent nights.

    Args:
        data: what the prediction log holds about the night and the nights before it
            (pipeline/store/night_history.py).
        reference_predictions: what the model predicted on its test split (its evaluation's
            test predictions), the reference of the predicted-class check; None shows the
            night alone.
        drift_reference: what the night's drift was measured against (`[MonitorDrift] reference`),
            in words; None when the drift folder does not say (drift from before 0.3).
        annotators: per annotator, labels, compared, agreement, kappa and flagged
            (pipeline.stages.agreement.annotator_table); None or empty: no section.
        drift_notes: [{feature, method, note}] of this night's drift (its drift folder's
            summary.json "notes", DriftFolder.notes()): why a check without a score did not run.
            Without them such a check still shows "not run", with no reason.
        failures: the night's steps that failed (a late-label file with the wrong columns, a
            drift check that crashed), each a red banner at the top; the rest of the page shows
            what the database holds anyway.
    """
    reference = _reference_shares(reference_predictions, data.task)
    parts = [
        _nightly_header(data, drift_reference, failures),
        section("Rows per night", _rows_section(data)),
        section("Drift per feature", _drift_section(data, drift_notes or [])),
        section(
            "Predicted classes" if data.task == "classification" else "Predicted values",
            _distribution_section(data, reference, drift_reference),
        ),
        section("Live quality", _quality_section(data)),
    ]
    if annotators is not None and len(annotators):
        parts.append(section("Annotators", annotator_section(annotators)))
    return page(f"Nightly report {data.batch_date.isoformat()}", parts)


@dataclass(frozen=True)
class FailedStep:
    """A step of the night that failed: its task name and its error in one line."""

    step: str
    error: str


def _failure_banners(failures: Sequence[FailedStep]) -> Html:
    """One red banner per failed step, above everything else the page says about the night."""
    return Html(
        "".join(
            f'<div class="banner bad failed"><strong>{escape(failure.step)} FAILED</strong>: '
            f"{escape(failure.error)}. This page shows what the night left in the database; "
            "rerun the night once the cause is fixed.</div>"
            for failure in failures
        )
    )


def _reference_shares(predicted: pd.Series | None, task: str):
    """The test split's predictions as class shares (classification) or values (regression)."""
    if predicted is None:
        return None
    if task == "classification":
        shares = predicted.astype(str).value_counts(normalize=True)
        return {str(name): float(share) for name, share in shares.items()}
    return predicted.to_numpy(dtype=float)


def _alerts_by_night(data: NightHistory) -> dict:
    """Each night's alerts that no acknowledgement covers: those that failed it."""
    alerts = defaultdict(list)
    for row in data.drift:
        if row["alert"] and not row.get("acknowledged"):
            alerts[row["batch_date"]].append(row)
    return alerts


def _nightly_header(data: NightHistory, drift_reference: str | None, failures: Sequence[FailedStep] = ()) -> Html:
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
    new = [row for row in alerts if not row.get("acknowledged")]
    counted = f"{len(alerts) - len(new)} acknowledged, {len(new)} new"
    if new:
        features = sorted({row["feature"] for row in new})
        banner = (
            f'<div class="banner bad"><strong>DRIFT ALERT</strong> ({counted}): new in '
            f"{escape(', '.join(features))}. This night's inputs or predictions differ from the "
            "training data beyond the thresholds: look before trusting its predictions.</div>"
        )
    elif alerts:
        features = sorted({row["feature"] for row in alerts})
        banner = (
            f'<div class="banner neutral"><strong>Drift acknowledged</strong> ({counted}): '
            f"{escape(', '.join(features))}, as a person acknowledged it (`overnight drift acks`); "
            "the night passes.</div>"
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
        # A failed step first: the drift verdict below it may rest on a night that did not finish.
        f"Charts show the last {len(data.dates)} night(s) with batches.</p>{_failure_banners(failures)}{banner}"
        f'<p class="subtitle">Drift measured against {escape(drift_reference or "the training split")}.</p>'
    )


def _rows_section(data: NightHistory) -> Html:
    alerts = _alerts_by_night(data)
    per_night = {}
    for row in data.batches:
        if data.chosen.get(row["batch_date"]) == row["model_version"]:
            per_night[row["batch_date"]] = row
    dates = data.dates
    png = drawn(
        lambda out: night_plots.rows_per_night(
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


def _alert_status(row: dict, note: str | None = None) -> str:
    # No score: the check did not run (no values tonight, no vocabulary kept), which is no pass.
    if np.isnan(as_float(row["score"])):
        return f"not run: {note or 'no reason on record'}"
    if not row["alert"]:
        return "ok"
    return "acknowledged" if row.get("acknowledged") else "ALERT"


def _drift_section(data: NightHistory, notes: list[dict]) -> Html:
    if not data.drift:
        return Html("<p>No drift figures for these nights (empty nights are not compared).</p>")
    series = defaultdict(lambda: defaultdict(list))
    for row in data.drift:
        series[row["feature"]][row["method"]].append(
            (row["batch_date"], as_float(row["score"]), as_float(row["threshold"]), bool(row["alert"]))
        )
    png = drawn(
        lambda out: night_plots.drift_over_nights(
            {k: dict(v) for k, v in series.items()}, data.dates, out, current=data.batch_date
        )
    )
    noted = {(note["feature"], note["method"]): note["note"] for note in notes}
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
            _alert_status(row, noted.get((row["feature"], row["method"]))),
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
            f'<p class="note">PSI, KS and Wasserstein (in training standard deviations) for numbers, PSI and '
            f"Jensen-Shannon (js) for categories; {escape(PREDICTION_FEATURE)} is the predicted-class "
            "distribution and (prediction):CLASS each class's class_share (times rarer or commoner than in the "
            "reference); missing, out_of_range, unseen, constant and duplicate_id are data-quality shares; "
            "'not run' says why a check has no score tonight. "
            "Each dashed line is the threshold of the method of its colour; thresholds rise on small nights "
            "to what sampling noise reaches.</p><h3>This night</h3>"
        )
        + listing
    )


def _distribution_section(data: NightHistory, reference, drift_reference: str | None) -> Html:
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
    if data.task == "classification":
        total = sum(data.counts.values())
        if not total:
            return Html("<p>No predictions this night.</p>")
        night = {name: count / total for name, count in data.counts.items()}
        png = drawn(
            lambda out: night_plots.class_distribution(
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
            lambda out: night_plots.value_distribution(
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
    if drift_reference and not drift_reference.startswith("the training split"):
        source += f" The drift score in the title is against {drift_reference}."
    return (
        image(png, "predicted class distribution: this night against the reference")
        + Html(f'<p class="note">{escape(source)}</p>')
        + listing
    )


def _quality_section(data: NightHistory) -> Html:
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
    alerts = _alerts_by_night(data)
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


def annotator_section(annotators: pd.DataFrame) -> Html:
    """Who labeled how much and how often they agree with the resolved labels; flagged in red."""
    flagged = annotators[annotators["flagged"]]
    warning = (
        Html(
            '<div class="banner bad">Flagged: '
            + ", ".join(
                f"{escape(row.annotator)} (agreement {format_number(row.agreement)} over {int(row.compared)} labels)"
                for row in flagged.itertuples()
            )
            + ". Their labels still count; check them before the next training with feedback.</div>"
        )
        if len(flagged)
        else Html("")
    )
    listing = table(
        ["annotator", "labels", "compared", "agreement", "kappa"],
        [
            [
                row.annotator,
                int(row.labels),
                int(row.compared),
                format_number(row.agreement, missing=""),
                format_number(row.kappa, missing=""),
            ]
            for row in annotators.itertuples()
        ],
        numeric=(1, 2, 3, 4),
        row_classes=["alert" if flag else "" for flag in annotators["flagged"]],
    )
    note = Html(
        '<p class="note">compared: labels on examples someone else labeled too; agreement: the share of those '
        "that match the resolved label; kappa: Cohen's kappa against each other annotator, weighted by the "
        "examples shared (0 is chance). All labels to date.</p>"
    )
    return warning + listing + note
