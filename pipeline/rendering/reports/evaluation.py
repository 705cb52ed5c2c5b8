"""The evaluation report: what an evaluation found (metrics, learning curves, confusion matrix or
predicted-vs-actual, calibration, slices, the worst test examples), one self-contained page.

The plots come from :mod:`pipeline.rendering.plots`, drawn once (evaluation_plots) for the page and
the evaluation folder alike.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.common.formatting import format_number, format_raw
from pipeline.common.metrics import headline_text
from pipeline.rendering import plots
from pipeline.rendering.reports.markup import Html, as_text, drawn, escape, image, is_finite, page, section, table
from pipeline.stages.images import WHITE, Background, read_image
from pipeline.stages.preprocessor import Preprocessor

LEARNING_CURVES = "learning_curves.png"
CONFUSION = "confusion_matrix.png"
CALIBRATION = "calibration.png"
PREDICTED_VS_ACTUAL = "predicted_vs_actual.png"
WORST_EXAMPLES = 12
THUMBNAIL_PIXELS = 64  # an 8x8 digit becomes 64x64, every pixel a visible square
SNIPPET_CHARACTERS = 200

# Diagnoses a person must act on are red, a model that could learn more amber, a good run green.
VERDICT_CLASS = {
    "overfitting": "bad",
    "diverged": "bad",
    "underfitting": "warn",
    "split warning": "warn",
    "below baseline": "bad",
    "no better than trivial": "bad",
    "unpredictable": "warn",
    "fine": "good",
}


def evaluation_plots(
    document: dict, history: dict[str, list[float]], test_predictions: pd.DataFrame, classes: tuple[str, ...] = ()
) -> dict[str, bytes]:
    """Every plot an evaluation shows, as PNG bytes by file name: the learning curves, and the
    confusion matrix and calibration (classification) or predicted against actual (regression)."""
    curves = _diagnosis(document).get("learning_curves") or _diagnosis(document)
    pngs = {LEARNING_CURVES: drawn(lambda out: plots.learning_curves(history, curves, out))}
    if document["task"] == "classification":
        pngs[CONFUSION] = drawn(lambda out: _confusion_plot(test_predictions, classes, out))
        pngs[CALIBRATION] = drawn(lambda out: calibration_plot(test_predictions, out))
    else:
        actual, predicted = (test_predictions[name].to_numpy(dtype=float) for name in ("label", "prediction"))
        pngs[PREDICTED_VS_ACTUAL] = drawn(lambda out: plots.predicted_vs_actual(actual, predicted, out))
    return pngs


def evaluation_report(
    document: dict,
    history: dict[str, list[float]],
    *,
    preprocessor: Preprocessor,
    test_predictions: pd.DataFrame,
    examples: pd.DataFrame | None = None,
    plots: dict[str, bytes] | None = None,
) -> str:
    """The page of what an evaluation found, for a person to open in a browser.

    Args:
        document: the metrics document (metrics.json).
        history: the training history (loss and val_loss per epoch).
        preprocessor: the fitted preprocessor (task, classes, schema).
        test_predictions: one row per test example, worst first (test_predictions.parquet).
        examples: the validated table (example_id and feature columns), to show the worst
            examples' images, text and values; None shows their ids only.
        plots: evaluation_plots' PNGs, embedded as they are; None draws them.
    """
    task = document["task"]
    diagnosis = _diagnosis(document)
    pngs = plots if plots is not None else evaluation_plots(document, history, test_predictions, preprocessor.classes)
    parts = [
        _evaluation_header(document, diagnosis, len(test_predictions)),
        _split_notes(document.get("split") or {}),
        section("Metrics", _metrics_table(document)),
        section("Learning curves", _learning_curves(pngs[LEARNING_CURVES], history, diagnosis)),
    ]
    if task == "classification":
        parts.append(section("Confusion matrix", _confusion(pngs[CONFUSION])))
        parts.append(section("Calibration", _calibration(pngs[CALIBRATION])))
    else:
        parts.append(section("Predicted vs actual", _predicted_vs_actual(pngs[PREDICTED_VS_ACTUAL])))
    if document.get("slices"):
        parts.append(section("Per-slice metrics", _slice_table(document, task)))
    worst = _worst_examples(test_predictions.head(WORST_EXAMPLES), task, preprocessor, examples)
    parts.append(section(f"Worst {WORST_EXAMPLES} test examples", worst))
    return page(f"Evaluation report: {task}", parts)


def _diagnosis(document: dict) -> dict:
    return document.get("diagnosis") or {"diagnosis": "unknown", "reason": "no training history"}


def _evaluation_header(document: dict, diagnosis: dict, rows: int) -> Html:
    headline = document.get("headline", {})
    value = headline.get("value")
    definition = headline_text(headline.get("definition", {}))
    # metrics.json written before the imbalance rule has no "rule": its headline was the configured one.
    rule = f" Chosen by the rule: {headline['rule']}." if headline.get("rule") else ""
    verdict = diagnosis["diagnosis"]
    banner_class = VERDICT_CLASS.get(verdict, "neutral")
    return Html(
        f"<h1>Evaluation report: {escape(document['task'])}, headline {escape(definition)} = "
        f"{escape(format_number(value, missing=''))}</h1>"
        f'<p class="subtitle">{rows} test examples. Headline: the one score that ranks models and '
        f"gates promotion.{escape(rule)}</p>"
        f'<div class="banner {banner_class}"><strong>Diagnosis: {escape(verdict)}</strong>. '
        f"{escape(diagnosis.get('reason', ''))}</div>"
    )


def _split_notes(split: dict) -> Html:
    """The split's warnings, then what near-duplicate grouping found: the report's first lines."""
    parts = []
    if split.get("warnings"):
        items = "".join(f"<li>{escape(warning)}</li>" for warning in split["warnings"])
        parts.append(f'<div class="banner warn"><strong>Split warnings</strong><ul>{items}</ul></div>')
    near = split.get("near_duplicates")
    if near:
        parts.append(f'<p class="note">{escape(near_duplicate_line(near))}</p>')
    return Html("".join(parts))


def near_duplicate_line(near: dict) -> str:
    """One sentence on the near-duplicate groups of a split's checks (also `overnight summary`'s)."""
    if not near["groups"]:
        return "Near-duplicates: none found."
    # Tables are joined by equal values (text without case and punctuation), images by their hashes.
    images = near.get("by", "image hash") == "image hash"
    how = f"threshold {near['threshold']} bits of 64" if images else "equal values, text without case and punctuation"
    kept = (
        f"each kept in one split ({how})"
        if near["kept_together"]
        else f"kept apart ([SplitData] near_duplicate_threshold = 0): {near['straddling']} straddle the splits"
    )
    pairs = "; ".join(f"{pair['a']} ~ {pair['b']}" for pair in near.get("pairs", [])[:3])
    return f"Near-duplicates: {near['groups']} groups covering {near['examples']} examples, {kept}. e.g. {pairs}"


def baseline_line(name: str, baseline: dict, headline: float) -> str:
    """One baseline's headline against the model's (also `overnight summary`'s)."""
    sampled = f"; fitted on a sample of {baseline['fitted_rows']} training rows" if baseline.get("sampled") else ""
    return (
        f"{name} headline {baseline['headline']:.4f} (model {headline - baseline['headline']:+.4f}): "
        f"{baseline['description']}{sampled}"
    )


def _metrics_table(document: dict) -> Html:
    """The model's validation and test figures, and each baseline's test figures beside them."""
    splits = [name for name in ("validation", "test") if name in document.get("splits", {})]
    names = [name for split in splits for name in document["splits"][split] if name != "rows"]
    names = list(dict.fromkeys(["rows", *names]))
    baselines = document.get("baselines", {})
    headers = ["metric", *splits, *(f"test: {name}" for name in baselines)]
    figures = {split: dict(document["splits"][split]) for split in splits}
    if baselines:  # the headline row: the test headline of the model and of each baseline
        figures["test"]["headline"] = document["headline"]["value"]
        names.append("headline")
    rows = [
        [
            name,
            *(format_number(figures[split].get(name), missing="") for split in splits),
            *(format_number(baseline.get(name), missing="") for baseline in baselines.values()),
        ]
        for name in names
    ]
    note = "log_loss, ece, mae and rmse: lower is better; the others higher."
    if baselines:
        note += f" The headline row: {headline_text(document['headline'].get('definition', {}))}, for every column."
    if baselines:
        described = "; ".join(
            f"{name}: {baseline['description']}"
            + (f" (fitted on a sample of {baseline['fitted_rows']} rows)" if baseline.get("sampled") else "")
            for name, baseline in baselines.items()
        )
        note += f" Baselines, fitted on the same training split and scored on the same test rows: {described}."
    return table(headers, rows, numeric=range(1, len(headers))) + Html(f'<p class="note">{escape(note)}</p>')


def _learning_curves(png: bytes, history: dict, diagnosis: dict) -> Html:
    explanation = (
        "Training loss (loss) against validation loss (val_loss) per epoch. Overfitting: val_loss "
        "turns up while loss keeps falling (the red band). Early stopping keeps the weights of the "
        "best val_loss: where the rise came after them (the amber band), the evaluated model is not "
        "overfitted. Underfitting: both are still high or still falling when training stops."
    )
    return (
        image(png, "learning curves: loss and val_loss per epoch")
        + Html(
            f"<p><strong>{escape(diagnosis['diagnosis'])}</strong>: {escape(diagnosis.get('reason', ''))}</p>"
            f'<p class="note">{escape(explanation)}</p>'
        )
        + _epoch_table(history, diagnosis.get("learning_curves", diagnosis).get("evaluated_epoch"))
    )


def _epoch_table(history: dict[str, list[float]], evaluated: int | None = None) -> Html:
    """Training against validation at the first, best, evaluated and last epoch: the size of the
    gap in numbers (`evaluated`: the epoch, from 1, whose weights the model holds)."""
    pairs = sorted(
        ((name, f"val_{name}") for name in history if not name.startswith("val_") and f"val_{name}" in history),
        key=lambda pair: pair[0] != "loss",
    )
    validation = history.get("val_loss", [])
    if not pairs or not validation:
        return Html("")
    finite = [value if is_finite(value) else math.inf for value in validation]
    best = int(np.argmin(finite))
    last = len(validation) - 1
    kept = evaluated - 1 if evaluated and 0 < evaluated <= last else None  # None: the last epoch's
    epochs = sorted(set(filter(lambda epoch: epoch is not None, (0, best, kept, last))))
    names = {0: "first", best: "best val_loss", last: "last"}
    if kept is not None:
        names[kept] = "best val_loss, weights kept" if kept == best else "weights kept"
    headers = ["epoch", *[name for pair in pairs for name in pair], "val_loss - loss"]
    rows = [
        [
            f"{epoch + 1} ({names[epoch]})",
            *[format_number(history[name][epoch], missing="") for pair in pairs for name in pair],
            format_number(history["val_loss"][epoch] - history["loss"][epoch], missing="") if "loss" in history else "",
        ]
        for epoch in epochs
    ]
    return table(headers, rows, numeric=range(1, len(headers))) + Html(
        '<p class="note">A validation loss far above the training loss (and a validation accuracy far below '
        "the training accuracy) is what overfitting looks like in numbers.</p>"
    )


def _confusion_plot(test_predictions: pd.DataFrame, classes: tuple[str, ...], out) -> None:
    names = [str(name) for name in classes]
    index = {name: position for position, name in enumerate(names)}
    labels = np.array([index.get(str(name), -1) for name in test_predictions["label"]])
    predicted = np.array([index.get(str(name), -1) for name in test_predictions["prediction"]])
    plots.confusion(labels, predicted, names, out)


def _confusion(png: bytes) -> Html:
    return image(png, "confusion matrix: true class by row, predicted class by column") + Html(
        '<p class="note">Rows: the true class; columns: the predicted class. Off the diagonal: mistakes.</p>'
    )


def _calibration(png: bytes) -> Html:
    return image(png, "calibration: accuracy per confidence bin against the diagonal") + Html(
        '<p class="note">Bars below the diagonal: the model is more confident than it is right '
        "(over-confident); above: under-confident. n: test examples in the bin; faint, hatched bars "
        "hold fewer than 10 and say little.</p>"
    )


def calibration_plot(test_predictions: pd.DataFrame, path) -> None:
    """The reliability diagram of a classification's test predictions (label, prediction, score)."""
    correct = test_predictions["label"].astype(str).to_numpy() == test_predictions["prediction"].astype(str).to_numpy()
    plots.calibration(test_predictions["score"].to_numpy(dtype=float), correct, path)


def _predicted_vs_actual(png: bytes) -> Html:
    return image(png, "predicted against actual values on the test split") + Html(
        '<p class="note">On the dotted diagonal the prediction is exact.</p>'
    )


def _slice_table(document: dict, task: str) -> Html:
    slices = document["slices"]
    names = list(dict.fromkeys(name for values in slices.values() for name in values if name != "rows"))
    key = "accuracy" if task == "classification" else "mae"
    scored = {name: values.get(key) for name, values in slices.items() if is_finite(values.get(key))}
    worst = (
        (min(scored, key=scored.get) if task == "classification" else max(scored, key=scored.get)) if scored else None
    )
    rows = [
        [name, values.get("rows"), *[format_number(values.get(metric), missing="") for metric in names]]
        for name, values in slices.items()
    ]
    classes = ["worst" if name == worst else "" for name in slices]
    note = f'<p class="note">Highlighted: the slice with the worst {escape(key)}.</p>' if worst is not None else ""
    return table(["slice", "rows", *names], rows, numeric=range(1, len(names) + 2), row_classes=classes) + Html(note)


def _worst_examples(worst: pd.DataFrame, task: str, preprocessor: Preprocessor, examples: pd.DataFrame | None) -> Html:
    if worst.empty:
        return Html("<p>No test examples.</p>")
    kinds = preprocessor.schema.kinds
    by_id = {}
    if examples is not None and "example_id" in examples.columns:
        wanted = examples[examples["example_id"].isin(worst["example_id"])]
        by_id = {row["example_id"]: row for row in wanted.to_dict("records")}
    cards = [
        _example_card(rank, row, task, kinds, by_id.get(row["example_id"]), preprocessor.image)
        for rank, row in enumerate(worst.to_dict("records"), start=1)
    ]
    order = "lowest probability on the true class" if task == "classification" else "largest absolute error"
    return Html(f'<p class="note">Worst first ({escape(order)}).</p><div class="examples">{"".join(cards)}</div>')


def _example_card(rank: int, row: dict, task: str, kinds: dict[str, str], example: dict | None, images: dict) -> str:
    if task == "classification":
        wrong = str(row["label"]) != str(row["prediction"])
        outcome = (
            f"true <strong>{escape(row['label'])}</strong>, predicted "
            f'<strong class="{"wrong" if wrong else ""}">{escape(row["prediction"])}</strong>, '
            f"confidence {escape(format_number(row.get('score'), missing=''))}"
        )
    else:
        outcome = (
            f"true <strong>{escape(format_number(row['label'], missing=''))}</strong>, predicted "
            f'<strong class="wrong">{escape(format_number(row["prediction"], missing=""))}</strong>, '
            f"error {escape(format_number(row.get('loss'), missing=''))}"
        )
    content = (
        _example_content(example, kinds, images)
        if example is not None
        else '<p class="note">(features not available)</p>'
    )
    return (
        f'<div class="example"><div class="rank">#{rank}</div><div class="id">{escape(row["example_id"])}</div>'
        f"<div>{outcome}</div>{content}</div>"
    )


def _example_content(example: dict, kinds: dict[str, str], images: dict) -> str:
    """Images as the model saw them (images: column -> the preprocessor's ImageShape); other
    values as the input had them (a month of 3 is 3, not its scaled or circular encoding)."""
    parts, values = [], []
    for column, kind in kinds.items():
        value = example.get(column)
        if kind == "image":
            parts.append(_thumbnail(value, column, images.get(column)))
        elif kind == "text":
            parts.append(f'<div class="snippet" title="{escape(column)}">{escape(_snippet(value))}</div>')
        else:  # the validated value, as the input had it: not scaled, encoded or rounded
            values.append([column, format_raw(value)])
    if values:
        parts.append(table(["feature", "value"], values))
    return "".join(parts)


def _thumbnail(path, column: str, shape) -> str:
    png = thumbnail_png(path, channels=shape.channels, background=shape.background) if shape else thumbnail_png(path)
    if png is None:
        return f'<p class="note">({escape(column)}: image not readable at {escape(path)})</p>'
    return str(image(png, f"{column}: {Path(str(path)).name}", css_class="thumbnail"))


def thumbnail_png(
    path, pixels: int = THUMBNAIL_PIXELS, *, channels: int = 3, background: Background | None = WHITE
) -> bytes | None:
    """The image as the model reads it (pipeline/stages/images.py), as a PNG about `pixels` wide:
    small images upscaled by nearest neighbour (sharp squares, no blur), large ones reduced.
    None when the file is missing or unreadable."""
    from PIL import Image

    if not isinstance(path, str) or not path:
        return None
    try:
        image = read_image(path, channels=channels, background=background)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    longest = max(image.size)
    if longest < pixels:
        factor = max(1, pixels // longest)
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    else:
        image.thumbnail((pixels * 2, pixels * 2))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _snippet(value) -> str:
    text = as_text(value)
    return text if len(text) <= SNIPPET_CHARACTERS else text[:SNIPPET_CHARACTERS].rstrip() + "..."
