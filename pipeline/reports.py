"""Self-contained HTML reports: one per evaluation, one per night.

A report is one file a person can open from any folder or attach to a mail: every image is a
base64 data URI, the CSS is in the page, there is no script and no external URL. Everything
that comes from the data (class names, ids, text, feature names and values, reasons) is
escaped. Red means "look here": an alert, an overfitting model, a drifted night.

Built with the standard library (html.escape and string building); the plots come from
:mod:`pipeline.plots`.
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline import plots
from pipeline.database.schema import (
    batches as batches_table,
    drift as drift_table,
    model_versions,
    prediction_quality_daily_view,
    predictions as predictions_table,
)

REPORT = "report.html"
WORST_EXAMPLES = 12
THUMBNAIL_PIXELS = 64  # an 8x8 digit becomes 64x64, every pixel a visible square
SNIPPET_CHARACTERS = 200
PREDICTION_FEATURE = "(prediction)"  # pipeline.monitoring.PREDICTION, without importing scipy's stats

# Diagnoses a person must act on are red, a model that could learn more amber, a good run green.
VERDICT_CLASS = {"overfitting": "bad", "diverged": "bad", "underfitting": "warn", "fine": "good"}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto;
       max-width: 1100px; padding: 0 16px; color: #212121; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 4px; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.subtitle { color: #616161; margin-top: 0; }
.banner { padding: 12px 16px; border-radius: 6px; font-size: 1.1em; margin: 16px 0; border-left: 8px solid; }
.banner.good { background: #e8f5e9; border-color: #2e7d32; color: #1b5e20; }
.banner.warn { background: #fff3e0; border-color: #ef6c00; color: #e65100; }
.banner.bad { background: #fdecea; border-color: #c62828; color: #b71c1c; }
.banner.neutral { background: #f5f5f5; border-color: #9e9e9e; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.92em; }
th, td { border: 1px solid #e0e0e0; padding: 4px 10px; text-align: left; vertical-align: top; white-space: nowrap; }
td.wrap { white-space: normal; }
th { background: #f5f5f5; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.alert td { background: #fdecea; color: #b71c1c; font-weight: 600; }
tr.worst td { background: #fff3e0; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { color: #616161; font-size: 0.9em; }
.examples { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 12px; }
.example { border: 1px solid #e0e0e0; border-radius: 6px; padding: 8px; font-size: 0.88em; }
.example .rank { font-weight: 700; }
.example .id { color: #616161; word-break: break-all; }
.example img.thumbnail { image-rendering: pixelated; border: 1px solid #bbb; margin: 4px 4px 4px 0;
                         height: 96px; width: auto; }
.example .snippet { background: #fafafa; border-left: 3px solid #bdbdbd; padding: 4px 6px; margin: 4px 0;
                    white-space: pre-wrap; word-break: break-word; }
.example table { font-size: 0.95em; }
.example td { white-space: normal; word-break: break-word; }
.wrong { color: #b71c1c; font-weight: 600; }
"""


class Html(str):
    """Markup that is already safe: inserted as is, where any other value is escaped."""


def escape(value) -> Html:
    return value if isinstance(value, Html) else Html(html.escape(_text(value), quote=True))


# --- Evaluation report ---------------------------------------------------------------------------

def evaluation_report(out_dir, document: dict, history: dict[str, list[float]], *, preprocessor: dict,
                      test_predictions: pd.DataFrame, examples: pd.DataFrame | None = None) -> Path:
    """Write out_dir/report.html: what an evaluation found, for a person to open in a browser.

    Plots that evaluate() already wrote in out_dir (learning curves, confusion matrix or
    predicted-vs-actual, calibration) are embedded as they are; a missing one is drawn into
    out_dir first.

    Args:
        document: the metrics document (metrics.json).
        history: the training history (loss and val_loss per epoch).
        preprocessor: the fitted preprocessor (task, classes, schema).
        test_predictions: one row per test example, worst first (test_predictions.parquet).
        examples: the validated table (example_id and feature columns), to show the worst
            examples' images, text and values; None shows their ids only.

    Returns:
        The report's path.
    """
    out_dir = Path(out_dir)
    task = document["task"]
    diagnosis = document.get("diagnosis") or {"diagnosis": "unknown", "reason": "no training history"}
    parts = [_evaluation_header(document, diagnosis, len(test_predictions)),
             _section("Metrics", _metrics_table(document)),
             _section("Learning curves", _learning_curves(out_dir, history, diagnosis))]
    if task == "classification":
        parts.append(_section("Confusion matrix", _confusion(out_dir, test_predictions, preprocessor)))
        parts.append(_section("Calibration", _calibration(out_dir, test_predictions)))
    else:
        parts.append(_section("Predicted vs actual", _predicted_vs_actual(out_dir, test_predictions)))
    if document.get("slices"):
        parts.append(_section("Per-slice metrics", _slice_table(document, task)))
    parts.append(_section(f"Worst {WORST_EXAMPLES} test examples",
                          _worst_examples(test_predictions.head(WORST_EXAMPLES), task, preprocessor, examples)))
    title = f"Evaluation report: {task}"
    return _write(out_dir / REPORT, _page(title, parts))


def _evaluation_header(document: dict, diagnosis: dict, rows: int) -> Html:
    headline = document.get("headline", {})
    value = headline.get("value")
    definition = _headline_text(headline.get("definition", {}))
    verdict = diagnosis["diagnosis"]
    banner_class = VERDICT_CLASS.get(verdict, "neutral")
    return Html(f"<h1>Evaluation report: {escape(document['task'])}, headline {escape(definition)} = "
                f"{escape(_number(value))}</h1>"
                f'<p class="subtitle">{rows} test examples. Headline: the one score that ranks models and '
                "gates promotion.</p>"
                f'<div class="banner {banner_class}"><strong>Diagnosis: {escape(verdict)}</strong>. '
                f"{escape(diagnosis.get('reason', ''))}</div>")


def _headline_text(weights: dict) -> str:
    if len(weights) == 1 and next(iter(weights.values())) == 1:
        return next(iter(weights))
    return " + ".join(f"{weight:g} x {name}" for name, weight in weights.items()) or "headline"


def _metrics_table(document: dict) -> Html:
    splits = [name for name in ("validation", "test") if name in document.get("splits", {})]
    names = [name for split in splits for name in document["splits"][split] if name != "rows"]
    names = list(dict.fromkeys(["rows", *names]))
    rows = [[name, *[_number(document["splits"][split].get(name)) for split in splits]] for name in names]
    return _table(["metric", *splits], rows, numeric=range(1, len(splits) + 1)) + Html(
        '<p class="note">log_loss, ece, mae and rmse: lower is better; the others higher.</p>')


def _learning_curves(out_dir: Path, history: dict, diagnosis: dict) -> Html:
    png = _existing_or_drawn(out_dir / "learning_curves.png", lambda path: plots.learning_curves(history, diagnosis, path))
    explanation = ("Training loss (loss) against validation loss (val_loss) per epoch. Overfitting: val_loss "
                   "turns up while loss keeps falling (the red band). Underfitting: both are still high or "
                   "still falling when training stops.")
    return (_image(png, "learning curves: loss and val_loss per epoch")
            + Html(f'<p><strong>{escape(diagnosis["diagnosis"])}</strong>: {escape(diagnosis.get("reason", ""))}</p>'
                   f'<p class="note">{escape(explanation)}</p>') + _epoch_table(history))


def _epoch_table(history: dict[str, list[float]]) -> Html:
    """Training against validation at the first, best and last epoch: the size of the gap in numbers."""
    pairs = sorted(((name, f"val_{name}") for name in history if not name.startswith("val_") and f"val_{name}" in history),
                   key=lambda pair: pair[0] != "loss")
    validation = history.get("val_loss", [])
    if not pairs or not validation:
        return Html("")
    finite = [value if _finite(value) else math.inf for value in validation]
    best = int(np.argmin(finite))
    epochs = list(dict.fromkeys([0, best, len(validation) - 1]))
    names = {0: "first", best: "best val_loss", len(validation) - 1: "last"}
    headers = ["epoch", *[name for pair in pairs for name in pair], "val_loss - loss"]
    rows = [[f"{epoch + 1} ({names[epoch]})", *[_number(history[name][epoch]) for pair in pairs for name in pair],
             _number(history["val_loss"][epoch] - history["loss"][epoch]) if "loss" in history else ""]
            for epoch in epochs]
    return _table(headers, rows, numeric=range(1, len(headers))) + Html(
        '<p class="note">A validation loss far above the training loss (and a validation accuracy far below '
        "the training accuracy) is what overfitting looks like in numbers.</p>")


def _confusion(out_dir: Path, test_predictions: pd.DataFrame, preprocessor: dict) -> Html:
    classes = [str(name) for name in preprocessor.get("classes", [])]

    def draw(path):
        index = {name: position for position, name in enumerate(classes)}
        labels = np.array([index.get(str(name), -1) for name in test_predictions["label"]])
        predicted = np.array([index.get(str(name), -1) for name in test_predictions["prediction"]])
        plots.confusion(labels, predicted, classes, path)

    png = _existing_or_drawn(out_dir / "confusion_matrix.png", draw)
    return _image(png, "confusion matrix: true class by row, predicted class by column") + Html(
        '<p class="note">Rows: the true class; columns: the predicted class. Off the diagonal: mistakes.</p>')


def _calibration(out_dir: Path, test_predictions: pd.DataFrame) -> Html:
    png = _existing_or_drawn(out_dir / "calibration.png", lambda path: calibration_plot(test_predictions, path))
    return _image(png, "calibration: accuracy per confidence bin against the diagonal") + Html(
        '<p class="note">Bars below the diagonal: the model is more confident than it is right '
        "(over-confident); above: under-confident. n: test examples in the bin.</p>")


def calibration_plot(test_predictions: pd.DataFrame, path) -> None:
    """The reliability diagram of a classification's test predictions (label, prediction, score)."""
    correct = test_predictions["label"].astype(str).to_numpy() == test_predictions["prediction"].astype(str).to_numpy()
    plots.calibration(test_predictions["score"].to_numpy(dtype=float), correct, path)


def _predicted_vs_actual(out_dir: Path, test_predictions: pd.DataFrame) -> Html:
    png = _existing_or_drawn(out_dir / "predicted_vs_actual.png", lambda path: plots.predicted_vs_actual(
        test_predictions["label"].to_numpy(dtype=float), test_predictions["prediction"].to_numpy(dtype=float), path))
    return _image(png, "predicted against actual values on the test split") + Html(
        '<p class="note">On the dotted diagonal the prediction is exact.</p>')


def _slice_table(document: dict, task: str) -> Html:
    slices = document["slices"]
    names = list(dict.fromkeys(name for values in slices.values() for name in values if name != "rows"))
    key = "accuracy" if task == "classification" else "mae"
    scored = {name: values.get(key) for name, values in slices.items() if _finite(values.get(key))}
    worst = (min(scored, key=scored.get) if task == "classification" else max(scored, key=scored.get)) if scored else None
    rows = [[name, values.get("rows"), *[_number(values.get(metric)) for metric in names]]
            for name, values in slices.items()]
    classes = ["worst" if name == worst else "" for name in slices]
    note = f'<p class="note">Highlighted: the slice with the worst {escape(key)}.</p>' if worst is not None else ""
    return _table(["slice", "rows", *names], rows, numeric=range(1, len(names) + 2), row_classes=classes) + Html(note)


def _worst_examples(worst: pd.DataFrame, task: str, preprocessor: dict, examples: pd.DataFrame | None) -> Html:
    if worst.empty:
        return Html("<p>No test examples.</p>")
    kinds = preprocessor.get("schema", {}).get("kinds", {})
    by_id = {}
    if examples is not None and "example_id" in examples.columns:
        wanted = examples[examples["example_id"].isin(worst["example_id"])]
        by_id = {row["example_id"]: row for row in wanted.to_dict("records")}
    cards = [_example_card(rank, row, task, kinds, by_id.get(row["example_id"]))
             for rank, row in enumerate(worst.to_dict("records"), start=1)]
    order = "lowest probability on the true class" if task == "classification" else "largest absolute error"
    return Html(f'<p class="note">Worst first ({escape(order)}).</p><div class="examples">{"".join(cards)}</div>')


def _example_card(rank: int, row: dict, task: str, kinds: dict[str, str], example: dict | None) -> str:
    if task == "classification":
        wrong = str(row["label"]) != str(row["prediction"])
        outcome = (f'true <strong>{escape(row["label"])}</strong>, predicted '
                   f'<strong class="{"wrong" if wrong else ""}">{escape(row["prediction"])}</strong>, '
                   f'confidence {escape(_number(row.get("score")))}')
    else:
        outcome = (f'true <strong>{escape(_number(row["label"]))}</strong>, predicted '
                   f'<strong class="wrong">{escape(_number(row["prediction"]))}</strong>, '
                   f'error {escape(_number(row.get("loss")))}')
    content = _example_content(example, kinds) if example is not None else '<p class="note">(features not available)</p>'
    return (f'<div class="example"><div class="rank">#{rank}</div><div class="id">{escape(row["example_id"])}</div>'
            f"<div>{outcome}</div>{content}</div>")


def _example_content(example: dict, kinds: dict[str, str]) -> str:
    parts, values = [], []
    for column, kind in kinds.items():
        value = example.get(column)
        if kind == "image":
            parts.append(_thumbnail(value, column))
        elif kind == "text":
            parts.append(f'<div class="snippet" title="{escape(column)}">{escape(_snippet(value))}</div>')
        else:
            number = isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
            values.append([column, _number(value) if number else value])
    if values:
        parts.append(_table(["feature", "value"], values))
    return "".join(parts)


def _thumbnail(path, column: str) -> str:
    png = thumbnail_png(path)
    if png is None:
        return f'<p class="note">({escape(column)}: image not readable at {escape(path)})</p>'
    return str(_image(png, f"{column}: {Path(str(path)).name}", css_class="thumbnail"))


def thumbnail_png(path, pixels: int = THUMBNAIL_PIXELS) -> bytes | None:
    """The image as a PNG about `pixels` wide: small images upscaled by nearest neighbour (sharp
    squares, no blur), large ones reduced. None when the file is missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(path, str) or not path:
        return None
    try:
        with Image.open(path) as image:
            image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
            longest = max(image.size)
            if longest < pixels:
                factor = max(1, pixels // longest)
                image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
            else:
                image.thumbnail((pixels * 2, pixels * 2))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            return buffer.getvalue()
    except (FileNotFoundError, UnidentifiedImageError, OSError, ValueError):
        return None


def _snippet(value) -> str:
    text = _text(value)
    return text if len(text) <= SNIPPET_CHARACTERS else text[:SNIPPET_CHARACTERS].rstrip() + "..."


# --- Nightly report ------------------------------------------------------------------------------

def nightly_report(out_dir_or_path, engine: sa.Engine, *, batch_date: datetime.date, model_version: str,
                   nights: int = 14) -> Path:
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
    parts = [_nightly_header(data),
             _section("Rows per night", _rows_section(data)),
             _section("Drift per feature", _drift_section(data)),
             _section("Predicted classes" if data.task == "classification" else "Predicted values",
                      _distribution_section(data)),
             _section("Live quality", _quality_section(data))]
    return _write(target, _page(f"Nightly report {batch_date.isoformat()}", parts))


class _Night:
    """What the nightly report shows, read from the database in one place."""

    def __init__(self, **values):
        self.__dict__.update(values)


def _nightly_data(engine: sa.Engine, batch_date: datetime.date, model_version: str, nights: int) -> _Night:
    with engine.connect() as connection:
        dates = [row[0] for row in connection.execute(
            sa.select(batches_table.c.batch_date).where(batches_table.c.batch_date <= batch_date).distinct()
            .order_by(batches_table.c.batch_date.desc()).limit(nights))]
        if batch_date not in dates:
            dates = [batch_date, *dates][:nights]
        dates = sorted(dates)
        batch_rows = [dict(row._mapping) for row in connection.execute(
            sa.select(batches_table).where(batches_table.c.batch_date.in_(dates))
            .order_by(batches_table.c.batch_date, batches_table.c.loaded_at))]
        drift_rows = [dict(row._mapping) for row in connection.execute(
            sa.select(drift_table.c.batch_date, drift_table.c.model_version, drift_table.c.feature,
                      drift_table.c.method, drift_table.c.score, drift_table.c.threshold, drift_table.c.alert)
            .where(drift_table.c.batch_date.in_(dates)).order_by(drift_table.c.batch_date, drift_table.c.id))]
        model = connection.execute(
            sa.select(model_versions.c.task, model_versions.c.evaluation_path, model_versions.c.metrics)
            .where(model_versions.c.version == model_version)).first()
        task = (model.task if model is not None else None) or "classification"
        this_night = (predictions_table.c.batch_date == batch_date) & (predictions_table.c.model_version == model_version)
        if task == "classification":
            counts = {str(row[0]): int(row[1]) for row in connection.execute(
                sa.select(predictions_table.c.prediction, sa.func.count()).where(this_night)
                .group_by(predictions_table.c.prediction))}
            values = None
        else:
            counts = {}
            values = np.array([row[0] for row in connection.execute(
                sa.select(predictions_table.c.score).where(this_night)) if row[0] is not None], dtype=float)
        quality_rows = [dict(row._mapping) for row in connection.execute(
            sa.select(prediction_quality_daily_view).where(prediction_quality_daily_view.c.batch_date.in_(dates))
            .order_by(prediction_quality_daily_view.c.batch_date))]
    chosen = _model_per_night(batch_rows, drift_rows, model_version)
    drift_rows = [row for row in drift_rows if chosen.get(row["batch_date"]) == row["model_version"]]
    metrics = model.metrics if model is not None else None
    if isinstance(metrics, str):
        metrics = json.loads(metrics)
    return _Night(batch_date=batch_date, model_version=model_version, dates=dates, task=task,
                  batches=batch_rows, drift=drift_rows, chosen=chosen, counts=counts, values=values,
                  reference=_reference_predictions(model.evaluation_path if model is not None else None, task),
                  quality=quality_rows, test_metrics=(metrics or {}).get("test", {}))


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
    batch = next((row for row in data.batches if row["batch_date"] == data.batch_date
                  and row["model_version"] == data.model_version), None)
    scored = f"{batch['rows_scored']} rows scored, {batch['rows_rejected']} rejected" if batch else "no batch loaded"
    if alerts:
        features = sorted({row["feature"] for row in alerts})
        banner = (f'<div class="banner bad"><strong>DRIFT ALERT</strong>: {len(alerts)} alert(s) in '
                  f"{escape(', '.join(features))}. This night's inputs or predictions differ from the "
                  "training data beyond the thresholds: look before trusting its predictions.</div>")
    elif batch is not None and batch["status"] == "empty":
        banner = '<div class="banner neutral"><strong>Empty night</strong>: no rows arrived.</div>'
    elif tonight:
        banner = (f'<div class="banner good"><strong>No drift</strong>: {len({r["feature"] for r in tonight})} '
                  "monitored features within their thresholds.</div>")
    else:
        banner = '<div class="banner neutral"><strong>No drift figures</strong> for this night.</div>'
    return Html(f"<h1>Nightly report {escape(data.batch_date.isoformat())}</h1>"
                f'<p class="subtitle">Model {escape(data.model_version)} ({escape(data.task)}); {escape(scored)}. '
                f"Charts show the last {len(data.dates)} night(s) with batches.</p>{banner}")


def _rows_section(data: _Night) -> Html:
    alerts = _alerts_by_night(data)
    per_night = {}
    for row in data.batches:
        if data.chosen.get(row["batch_date"]) == row["model_version"]:
            per_night[row["batch_date"]] = row
    dates = data.dates
    png = _drawn(lambda out: plots.rows_per_night(
        dates, [_count(per_night.get(d, {}).get("rows_scored")) for d in dates],
        [_count(per_night.get(d, {}).get("rows_rejected")) for d in dates], out,
        alerts=[bool(alerts.get(d)) for d in dates], current=data.batch_date))
    quality = {(row["batch_date"], row["model_version"]): row for row in data.quality}
    metric = "accuracy" if data.task == "classification" else "mae"
    rows, classes = [], []
    for row in sorted(data.batches, key=lambda r: (r["batch_date"], r["model_version"]), reverse=True):
        shown = data.chosen.get(row["batch_date"]) == row["model_version"]  # the model whose drift this night shows
        night_alerts = alerts.get(row["batch_date"], []) if shown else []
        live = quality.get((row["batch_date"], row["model_version"]), {})
        rows.append([row["batch_date"].isoformat(), row["model_version"], row["rows_in"], row["rows_rejected"],
                     row["rows_scored"], row["status"],
                     ", ".join(sorted({a["feature"] for a in night_alerts})) or "none",
                     live.get("labeled") or 0, _number(live.get(metric))])
        classes.append("alert" if night_alerts else "")
    table = _table(["night", "model", "rows in", "rejected", "scored", "status", "drift alerts", "labeled", metric],
                   rows, numeric=(2, 3, 4, 7, 8), wrap=(6,), row_classes=classes)
    return _image(png, "rows scored and rejected per night; drifted nights outlined in red") + table


def _drift_section(data: _Night) -> Html:
    if not data.drift:
        return Html("<p>No drift figures for these nights (empty nights are not compared).</p>")
    series = defaultdict(lambda: defaultdict(list))
    for row in data.drift:
        series[row["feature"]][row["method"]].append(
            (row["batch_date"], _float(row["score"]), _float(row["threshold"]), bool(row["alert"])))
    png = _drawn(lambda out: plots.drift_over_nights({k: dict(v) for k, v in series.items()}, data.dates, out,
                                                     current=data.batch_date))
    tonight = sorted((row for row in data.drift if row["batch_date"] == data.batch_date),
                     key=lambda row: (not row["alert"], row["feature"], row["method"]))
    rows = [[row["feature"], row["method"], _number(row["score"]), _number(row["threshold"]),
             "ALERT" if row["alert"] else "ok"] for row in tonight]
    table = (_table(["feature", "method", "score", "threshold", "alert"], rows, numeric=(2, 3),
                    row_classes=["alert" if row["alert"] else "" for row in tonight])
             if rows else Html("<p>No drift figures for this night.</p>"))
    return (_image(png, "drift score per feature and night with its threshold; alerts in red")
            + Html(f'<p class="note">PSI and KS for numbers, PSI and Jensen-Shannon (js) for categories; '
                   f"{escape(PREDICTION_FEATURE)} is the predicted-class distribution. Thresholds rise on small "
                   "nights to what sampling noise reaches.</p><h3>This night</h3>") + table)


def _distribution_section(data: _Night) -> Html:
    check = next((row for row in data.drift if row["batch_date"] == data.batch_date
                  and row["feature"] == PREDICTION_FEATURE), None)
    alert = bool(check and check["alert"])
    verdict = (f"PSI {_number(check['score'])} against threshold {_number(check['threshold'])}"
               f"{': ALERT' if alert else ''}" if check else "no predicted-class check this night")
    reference = data.reference
    if data.task == "classification":
        total = sum(data.counts.values())
        if not total:
            return Html("<p>No predictions this night.</p>")
        night = {name: count / total for name, count in data.counts.items()}
        png = _drawn(lambda out: plots.class_distribution(night, reference, out, alert=alert,
                                                          title=f"Predicted classes, {total} rows ({verdict})"))
        names = sorted(set(night) | set(reference or {}), key=plots.natural_key)
        rows = [[name, data.counts.get(name, 0), _number(night.get(name, 0.0)),
                 _number(reference.get(name, 0.0)) if reference else ""] for name in names]
        table = _table(["class", "predictions", "share", "reference share"], rows, numeric=(1, 2, 3))
    else:
        if data.values is None or not len(data.values):
            return Html("<p>No predictions this night.</p>")
        png = _drawn(lambda out: plots.value_distribution(data.values, reference, out, alert=alert,
                                                          title=f"Predicted values, {len(data.values)} rows ({verdict})"))
        table = _table(["", "rows", "mean", "median", "min", "max"],
                       [[name, len(v), _number(np.mean(v)), _number(np.median(v)), _number(np.min(v)), _number(np.max(v))]
                        for name, v in (("this night", data.values), ("reference", reference))
                        if v is not None and len(v)], numeric=range(1, 6))
    source = ("Reference: the model's predictions on its test split."
              if reference is not None and len(reference) else
              "The model's test predictions are not available: the night is shown alone.")
    return _image(png, "predicted class distribution: this night against the reference") + Html(
        f'<p class="note">{escape(source)}</p>') + table


def _quality_section(data: _Night) -> Html:
    metric = "accuracy" if data.task == "classification" else "mae"
    rows = [row for row in data.quality if row.get(metric) is not None and (row.get("labeled") or 0) > 0]
    if not rows:
        return Html("<p>No labels have arrived for these nights yet (labels come back through "
                    "<code>feedback/&lt;date&gt;/</code>, usually a day later).</p>")
    series = defaultdict(list)
    for row in rows:
        series[row["model_version"]].append((row["batch_date"], _float(row[metric]), int(row["labeled"])))
    alerts = _alerts_by_night(data)
    reference = data.test_metrics.get(metric)
    png = _drawn(lambda out: plots.quality_over_nights(dict(series), data.dates, metric, out,
                                                       reference=_float(reference) if reference is not None else None,
                                                       alerts=[bool(alerts.get(d)) for d in data.dates],
                                                       current=data.batch_date))
    table = _table(["night", "model", "predicted", "labeled", metric],
                   [[row["batch_date"].isoformat(), row["model_version"], row.get("predicted"), row["labeled"],
                     _number(row[metric])] for row in sorted(rows, key=lambda r: r["batch_date"], reverse=True)],
                   numeric=(2, 3, 4), row_classes=["alert" if alerts.get(r["batch_date"]) else ""
                                                   for r in sorted(rows, key=lambda r: r["batch_date"], reverse=True)])
    return _image(png, f"live {metric} per night once labels arrived") + Html(
        '<p class="note">Labels arrive later: the newest nights may have none yet. n: labeled predictions.</p>') + table


# --- HTML helpers --------------------------------------------------------------------------------

def _page(title: str, parts: Iterable[str]) -> str:
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(parts)
            + f'\n<p class="note">Generated {escape(generated)} by overnight.</p>\n</body>\n</html>\n')


def _section(heading: str, body: str) -> Html:
    anchor = "".join(c if c.isalnum() else "-" for c in heading.lower()).strip("-")
    return Html(f'<section id="{escape(anchor)}">\n<h2>{escape(heading)}</h2>\n{body}\n</section>')


def _table(headers: Sequence, rows: Sequence[Sequence], *, numeric: Iterable[int] = (), wrap: Iterable[int] = (),
           row_classes: Sequence[str] | None = None) -> Html:
    """A table of escaped cells; `numeric` columns align right, `wrap` columns may break lines."""
    numeric, wrap = set(numeric), set(wrap)
    css = {**{position: ' class="wrap"' for position in wrap}, **{position: ' class="number"' for position in numeric}}
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = []
    for index, row in enumerate(rows):
        row_class = row_classes[index] if row_classes else ""
        cells = "".join(f"<td{css.get(position, '')}>{escape(cell)}</td>" for position, cell in enumerate(row))
        body.append(f'<tr class="{escape(row_class)}">{cells}</tr>' if row_class else f"<tr>{cells}</tr>")
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _image(png: bytes, alt: str, css_class: str = "plot") -> Html:
    data = base64.b64encode(png).decode("ascii")
    return Html(f'<img class="{css_class}" alt="{escape(alt)}" src="data:image/png;base64,{data}">')


def _drawn(draw) -> bytes:
    buffer = io.BytesIO()
    draw(buffer)
    return buffer.getvalue()


def _existing_or_drawn(path: Path, draw) -> bytes:
    """The PNG evaluate() wrote, or drawn now into the same place when it is missing."""
    if not path.is_file():
        draw(path)
    return path.read_bytes()


def _write(path: Path, text: str) -> Path:
    """Written beside and renamed: a reader never opens half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def _number(value) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _text(value)
    if not math.isfinite(number):
        return "-"
    if number == int(number) and abs(number) < 1e15 and isinstance(value, (int, np.integer)):
        return str(int(number))
    return f"{number:.4f}" if abs(number) < 1e5 else f"{number:.4g}"


def _float(value) -> float:
    return float("nan") if value is None else float(value)


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


def _count(value) -> int:
    return int(value) if value is not None else 0
