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
from pipeline.rendering.reports.live_quality import quality_section
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
        section("Live quality", quality_section(data)),
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
    online = data.online.get((data.batch_date, data.model_version), 0)
    if online:
        scored += f"; {online} answered online that day"
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
    alerts = data.failing_alerts()
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
                data.online.get((row["batch_date"], row["model_version"]), 0),
                row["status"],
                ", ".join(sorted({a["feature"] for a in night_alerts})) or "none",
                live.get("labeled") or 0,
                format_number(live.get(metric), missing=""),
            ]
        )
        classes.append("alert" if night_alerts else "")
    listing = table(
        ["night", "model", "rows in", "rejected", "scored", "online", "status", "drift alerts", "labeled", metric],
        rows,
        numeric=(2, 3, 4, 5, 8, 9),
        wrap=(7,),
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
