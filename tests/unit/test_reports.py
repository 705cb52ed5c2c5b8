"""Unit tests for pipeline/rendering/reports/ and the report plots: self-contained, escaped, complete."""

from __future__ import annotations

import base64
import datetime
import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.artifacts.evaluation import EvaluationFolder
from pipeline.artifacts.monitoring import write_night_report
from pipeline.rendering import plots
from pipeline.rendering.reports.evaluation import evaluation_plots, evaluation_report, thumbnail_png
from pipeline.rendering.reports.nightly import nightly_report
from pipeline.stages.agreement import AgreementSettings, annotator_table
from pipeline.stages.preprocessor import Preprocessor
from pipeline.stages.schema import Schema
from pipeline.store import database, prediction_log, registry
from pipeline.store import labels as labels_store
from pipeline.store.night_history import night_history

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
CLASSES = ["cat", HOSTILE]


class Page(HTMLParser):
    """Every tag with its attributes, the headings' text and the page's text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[str] = []
        self.text: list[str] = []
        self._heading = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("h1", "h2", "h3"):
            self._heading = []

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading is not None:
            self._heading.append(data)

    def images(self) -> list[dict]:
        return [attrs for tag, attrs in self.tags if tag == "img"]


def assert_self_contained(text: str) -> Page:
    page = Page(text)
    assert "<script" not in text.lower(), "no JavaScript, and hostile text must be escaped"
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http://", "https://", "//")), (tag, name, value[:80])
        assert tag not in ("link", "iframe", "object", "embed")
    assert page.images(), "a report without a single plot"
    for image in page.images():
        assert image["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(image["src"].split(",", 1)[1], validate=True)
        assert png[:8] == PNG_MAGIC
        assert image.get("alt")
    assert "http://" not in text and "https://" not in text
    return page


# --- evaluation report ---------------------------------------------------------------------------


@pytest.fixture
def evaluation(tmp_path):
    """A classification evaluation with an image, a text, a numeric and a categorical column."""
    rng = np.random.default_rng(0)
    rows = 40
    ids = [f"ex-{i:02d}" for i in range(rows)]
    image_paths = []
    for i in range(rows):
        path = tmp_path / "images" / f"{ids[i]}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), mode="L").save(path)
        image_paths.append(str(path))
    examples = pd.DataFrame(
        {
            "example_id": ids,
            "photo": image_paths,
            "review": [f"{HOSTILE} review number {i} " + "words " * 60 for i in range(rows)],
            "size": rng.normal(size=rows),
            "colour": [HOSTILE] * rows,
        }
    )
    labels = rng.integers(0, 2, rows)
    score = rng.uniform(0.5, 1.0, rows)
    predicted = np.where(rng.uniform(size=rows) < 0.7, labels, 1 - labels)
    classes = np.array(CLASSES)
    test_predictions = pd.DataFrame(
        {
            "example_id": ids,
            "label": classes[labels],
            "prediction": classes[predicted],
            "score": score,
            "loss": rng.uniform(0, 3, rows),
        }
    )
    test_predictions = test_predictions.sort_values("loss", ascending=False, ignore_index=True)
    metrics = {
        "accuracy": 0.7,
        "precision_macro": 0.7,
        "recall_macro": 0.7,
        "f1_macro": 0.7,
        "log_loss": 0.6,
        "ece": 0.1,
    }
    document = {
        "task": "classification",
        "splits": {"validation": {"rows": 20, **metrics}, "test": {"rows": rows, **metrics}},
        "slices": {"north": {"rows": 25, **metrics}, HOSTILE: {"rows": 15, **metrics, "accuracy": 0.4}},
        "headline": {"definition": {"accuracy": 1.0}, "value": 0.7},
        "diagnosis": {"diagnosis": "overfitting", "reason": f"val_loss rose; {HOSTILE}"},
    }
    history = {"loss": [1.0, 0.6, 0.3, 0.1, 0.05], "val_loss": [1.0, 0.7, 0.65, 0.8, 0.95]}
    kinds = {"photo": "image", "review": "text", "size": "numeric", "colour": "categorical"}
    preprocessor = Preprocessor(Schema(label="label", task="classification", kinds=kinds), classes=tuple(CLASSES))
    out_dir = tmp_path / "evaluation"
    out_dir.mkdir()
    return {
        "out_dir": out_dir,
        "document": document,
        "history": history,
        "preprocessor": preprocessor,
        "test_predictions": test_predictions,
        "examples": examples,
    }


def write_evaluation(evaluation, **overrides) -> str:
    """The plots and the page, written where EvaluateModel writes them."""
    arguments = {**evaluation, **overrides}
    classes = arguments["preprocessor"].classes
    pngs = evaluation_plots(arguments["document"], arguments["history"], arguments["test_predictions"], classes)
    text = evaluation_report(
        arguments["document"],
        arguments["history"],
        preprocessor=arguments["preprocessor"],
        test_predictions=arguments["test_predictions"],
        examples=arguments["examples"],
        plots=pngs,
    )
    for name, png in pngs.items():
        (arguments["out_dir"] / name).write_bytes(png)
    folder = EvaluationFolder(arguments["out_dir"])
    folder.report_path.write_text(text, encoding="utf-8")
    return folder.report_path.read_text(encoding="utf-8")


def test_evaluation_report_is_self_contained_and_has_every_section(evaluation):
    text = write_evaluation(evaluation)
    page = assert_self_contained(text)
    assert page.headings[0].startswith("Evaluation report: classification, headline accuracy = 0.7000")
    for heading in (
        "Metrics",
        "Learning curves",
        "Confusion matrix",
        "Calibration",
        "Per-slice metrics",
        "Worst 12 test examples",
    ):
        assert heading in page.headings
    assert "Diagnosis: overfitting" in text
    # The plots the page shows are the evaluation's PNG files too.
    for name in ("learning_curves.png", "confusion_matrix.png", "calibration.png"):
        assert (evaluation["out_dir"] / name).read_bytes()[:8] == PNG_MAGIC
    # 3 plots, and one thumbnail per worst example.
    thumbnails = [image for image in page.images() if image.get("class") == "thumbnail"]
    assert len(thumbnails) == 12 and len(page.images()) == 15
    worst_id = evaluation["test_predictions"]["example_id"].iloc[0]
    assert text.index(worst_id) < text.index(evaluation["test_predictions"]["example_id"].iloc[1])


def test_hostile_text_is_escaped_everywhere(evaluation):
    text = write_evaluation(evaluation)
    assert HOSTILE not in text
    assert ESCAPED in text
    # In the class names of the worst examples, the slice table, the diagnosis, text snippets and values.
    assert text.count(ESCAPED) >= 12


def test_text_snippets_are_cut_to_about_200_characters(evaluation):
    text = write_evaluation(evaluation)
    snippets = [data for data in Page(text).text if "review number" in data]
    assert snippets and all(len(snippet) <= 204 and snippet.endswith("...") for snippet in snippets)


def test_the_per_slice_table_appears_only_when_slices_exist(evaluation):
    with_slices = write_evaluation(evaluation)
    assert "Per-slice metrics" in Page(with_slices).headings
    assert 'class="worst"' in with_slices  # the slice with the lowest accuracy stands out
    without = write_evaluation(evaluation, document={**evaluation["document"], "slices": {}})
    assert "Per-slice metrics" not in Page(without).headings


def test_worst_examples_without_the_examples_table_still_list_ids(evaluation):
    text = write_evaluation(evaluation, examples=None)
    page = assert_self_contained(text)
    assert not [image for image in page.images() if image.get("class") == "thumbnail"]
    assert evaluation["test_predictions"]["example_id"].iloc[0] in text


def test_worst_example_cards_show_the_values_as_the_input_had_them(evaluation):
    # The validated table holds numbers parsed as floats: a month of 3 is 3.0, of 1 is 1.0.
    ids = evaluation["test_predictions"]["example_id"]
    examples = pd.DataFrame(
        {
            "example_id": ids,
            "month": [3.0, 1.0, 0.0, *([12.0] * (len(ids) - 3))],
            "dose": [0.123456, 2.5, float("nan"), *([1e-05] * (len(ids) - 3))],
            "when": pd.to_datetime(
                ["2026-03-01", "2026-03-02 14:30", None, *(["2026-03-04"] * (len(ids) - 3))], format="ISO8601"
            ),
            "code": ["007", "A-1", None, *(["x"] * (len(ids) - 3))],
        }
    )
    kinds = {"month": "numeric", "dose": "numeric", "when": "datetime", "code": "categorical"}
    preprocessor = Preprocessor(Schema(label="label", task="classification", kinds=kinds), classes=tuple(CLASSES))
    text = write_evaluation(evaluation, examples=examples, preprocessor=preprocessor)
    cards = text[text.index('<div class="examples">') :]
    rows = [cell.strip() for cell in Page(cards).text if cell.strip()]
    first = rows[rows.index(ids.iloc[0]) : rows.index(ids.iloc[1])]
    assert first[first.index("month") + 1] == "3"
    assert first[first.index("dose") + 1] == "0.123456"
    assert first[first.index("when") + 1] == "2026-03-01"
    assert first[first.index("code") + 1] == "007"
    second = rows[rows.index(ids.iloc[1]) : rows.index(ids.iloc[2])]
    assert [second[second.index(name) + 1] for name in ("month", "dose", "when")] == ["1", "2.5", "2026-03-02 14:30:00"]
    assert "1.0000" not in cards and "0.1235" not in cards and "2.5000" not in cards


def test_the_learning_curves_name_the_epoch_whose_weights_were_kept(evaluation):
    from pipeline.stages.diagnosis import diagnose

    curves = diagnose(evaluation["history"], evaluated_epoch=3)
    assert curves["diagnosis"] == "fine" and "overfitting after epoch 3" in curves["reason"]
    wrapped = {"diagnosis": "below baseline", "reason": "below the linear baseline", "learning_curves": curves}
    text = write_evaluation(evaluation, document={**evaluation["document"], "diagnosis": wrapped})
    assert "3 (best val_loss, weights kept)" in text and "5 (last)" in text
    assert "Diagnosis: below baseline" in text


def test_a_missing_image_is_a_note_not_a_broken_image(evaluation):
    examples = evaluation["examples"].assign(photo="/nonexistent/image.png")
    text = write_evaluation(evaluation, examples=examples)
    assert_self_contained(text)
    assert "image not readable" in text


def test_regression_report_has_predicted_vs_actual_and_no_calibration(tmp_path):
    rng = np.random.default_rng(1)
    targets = rng.normal(size=30)
    table = pd.DataFrame(
        {"example_id": [f"r{i}" for i in range(30)], "label": targets, "prediction": targets + rng.normal(0, 0.1, 30)}
    )
    table["loss"] = (table["prediction"] - table["label"]).abs()
    table = table.sort_values("loss", ascending=False, ignore_index=True)
    document = {
        "task": "regression",
        "splits": {"test": {"rows": 30, "mae": 0.1, "rmse": 0.12, "r2": 0.98}},
        "slices": {},
        "headline": {"definition": {"r2": 1.0}, "value": 0.98},
        "diagnosis": {"diagnosis": "fine", "reason": "settled"},
    }
    examples = pd.DataFrame({"example_id": table["example_id"], "x": rng.normal(size=30)})
    text = evaluation_report(
        document,
        {"loss": [1, 0.5], "val_loss": [1, 0.6]},
        preprocessor=Preprocessor(Schema(label="y", task="regression", kinds={"x": "numeric"})),
        test_predictions=table,
        examples=examples,
    )
    page = assert_self_contained(text)
    assert "Predicted vs actual" in page.headings and "Calibration" not in page.headings
    assert "banner good" in text


def test_calibration_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.3, 1.0, 200)
    correct = rng.uniform(size=200) < confidence
    plots.calibration(confidence, correct, tmp_path / "calibration.png")
    assert (tmp_path / "calibration.png").read_bytes()[:8] == PNG_MAGIC
    buffer = io.BytesIO()
    plots.calibration(np.array([]), np.array([], dtype=bool), buffer)  # no rows: still a plot
    assert buffer.getvalue()[:8] == PNG_MAGIC


def test_thumbnails_of_tiny_images_are_upscaled_with_sharp_pixels(tmp_path):
    pixels = np.zeros((8, 8), dtype=np.uint8)
    pixels[::2, ::2] = 255  # a checkerboard of single pixels
    Image.fromarray(pixels, mode="L").save(tmp_path / "digit.png")
    thumbnail = Image.open(io.BytesIO(thumbnail_png(str(tmp_path / "digit.png"))))
    assert thumbnail.size == (64, 64)
    values = np.asarray(thumbnail.convert("L"))
    assert set(np.unique(values)) == {0, 255}  # nearest neighbour: no blurred in-between greys
    assert thumbnail_png(str(tmp_path / "missing.png")) is None and thumbnail_png(None) is None


# --- nightly report ------------------------------------------------------------------------------

NIGHTS = [datetime.date(2026, 11, 1) + datetime.timedelta(days=i) for i in range(4)]
MODEL = "m1"


@pytest.fixture
def prediction_log_db(tmp_path):
    """Four nights scored by one model; the last one drifted; labels for the first two."""
    engine = database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    evaluation_dir = tmp_path / "evaluation"
    evaluation_dir.mkdir()
    pd.DataFrame({"prediction": ["cat"] * 50 + [HOSTILE] * 50}).to_parquet(evaluation_dir / "test_predictions.parquet")
    registry.register(
        engine,
        version=MODEL,
        run_id=None,
        path=str(tmp_path / "model"),
        sha256="0" * 64,
        task="classification",
        data_version=None,
        evaluation_path=str(evaluation_dir),
        headline=0.9,
        metrics={"test": {"accuracy": 0.9}},
        actor="test",
    )
    for index, night in enumerate(NIGHTS):
        drifted = index == len(NIGHTS) - 1
        predicted = ["cat"] * (35 if drifted else 20) + [HOSTILE] * (5 if drifted else 20)
        ids = [f"{night}-{i}" for i in range(len(predicted))]
        prediction_log.load_batch(
            engine,
            batch_date=night,
            model_version=MODEL,
            predictions=pd.DataFrame({"example_id": ids, "prediction": predicted, "score": 0.9}),
            rows_in=42,
            rows_rejected=2,
        )
        drift = pd.DataFrame(
            {
                "feature": ["image:brightness", "image:brightness", HOSTILE, "(prediction)"],
                "method": ["psi", "ks", "psi", "psi"],
                "score": [0.9 if drifted else 0.02, 0.5 if drifted else 0.05, 0.01, 0.3 if drifted else 0.01],
                "threshold": [0.2, 0.2, 0.2, 0.2],
                "alert": [drifted, drifted, False, drifted],
            }
        )
        stats = pd.DataFrame(columns=["feature", "statistic", "batch_value", "reference_value"])
        prediction_log.record_drift(engine, batch_date=night, model_version=MODEL, stats=stats, drift=drift)
        if index < 2:
            labels = ["cat" if i % 4 else HOSTILE for i in range(len(ids))]
            labels_store.load_feedback(engine, pd.DataFrame({"example_id": ids, "label": labels}), source="t")
    yield engine
    database.dispose_all()


def night_page(path: Path, engine, *, batch_date, model_version, nights: int = 14) -> Path:
    """The night's page, made and written as Nightly makes it: history, reference, page, file."""
    history = night_history(engine, batch_date=batch_date, model_version=model_version, nights=nights)
    reference = None
    if history.evaluation_path:
        reference = EvaluationFolder(Path(history.evaluation_path)).test_predictions(["prediction"])["prediction"]
    return write_night_report(path, nightly_report(history, reference_predictions=reference))


def test_nightly_report_of_a_drifted_night_is_red_and_complete(prediction_log_db, tmp_path):
    path = night_page(tmp_path / "night.html", prediction_log_db, batch_date=NIGHTS[-1], model_version=MODEL)
    text = path.read_text()
    page = assert_self_contained(text)
    assert page.headings[0] == f"Nightly report {NIGHTS[-1].isoformat()}"
    for heading in ("Rows per night", "Drift per feature", "Predicted classes", "Live quality"):
        assert heading in page.headings
    assert "banner bad" in text and "DRIFT ALERT" in text
    assert len(page.images()) == 4
    # One row per night in the rows table, the drifted one marked; this night's alerts marked too.
    alert_rows = [attrs for tag, attrs in page.tags if tag == "tr" and attrs.get("class") == "alert"]
    assert len(alert_rows) >= 1 + 3  # the night in the rows table, three alerts in this night's drift table
    assert HOSTILE not in text and ESCAPED in text


def test_nightly_report_flags_an_annotator_who_disagrees(prediction_log_db, tmp_path):
    engine = prediction_log_db
    ids = [f"{NIGHTS[0]}-{i}" for i in range(40)]
    given = ["cat" if i % 4 else HOSTILE for i in range(len(ids))]  # what annotator `unknown` gave
    labels_store.load_feedback(
        engine, pd.DataFrame({"example_id": ids, "label": given, "annotator": "mirror"}), source="m"
    )
    labels_store.load_feedback(
        engine, pd.DataFrame({"example_id": ids, "label": HOSTILE, "annotator": HOSTILE}), source="h"
    )
    history = night_history(engine, batch_date=NIGHTS[-1], model_version=MODEL)
    annotators = annotator_table(*labels_store.agreement_rows(engine), AgreementSettings(min_agreement=0.7))
    text = nightly_report(history, annotators=annotators)
    page = assert_self_contained(text)
    assert "Annotators" in page.headings
    assert f"Flagged: {ESCAPED} (agreement 0.25" in text and HOSTILE not in text
    assert "mirror" in text and "Flagged: mirror" not in text
    without = nightly_report(history, annotators=annotators.iloc[0:0])
    assert "Annotators" not in assert_self_contained(without).headings  # no labels, no section


def test_nightly_report_of_a_normal_night_is_green(prediction_log_db, tmp_path):
    path = night_page(tmp_path / "night.html", prediction_log_db, batch_date=NIGHTS[1], model_version=MODEL)
    text = path.read_text()
    assert_self_contained(text)
    assert "banner good" in text and "DRIFT ALERT" not in text
    # Only nights up to this one: the later, drifted night is not in it.
    assert NIGHTS[-1].isoformat() not in text


def test_nightly_report_limits_the_nights_shown(prediction_log_db, tmp_path):
    page = tmp_path / "night.html"
    text = night_page(page, prediction_log_db, batch_date=NIGHTS[-1], model_version=MODEL, nights=2).read_text()
    assert NIGHTS[0].isoformat() not in text and NIGHTS[-2].isoformat() in text
    with pytest.raises(ValueError):
        night_page(page, prediction_log_db, batch_date=NIGHTS[-1], model_version=MODEL, nights=0)


def test_nightly_report_of_an_empty_night_has_no_broken_images(prediction_log_db, tmp_path):
    empty = NIGHTS[-1] + datetime.timedelta(days=1)
    prediction_log.load_batch(
        prediction_log_db,
        batch_date=empty,
        model_version=MODEL,
        predictions=pd.DataFrame(columns=["example_id", "prediction", "score"]),
        rows_in=0,
        rows_rejected=0,
    )
    text = night_page(tmp_path / "night.html", prediction_log_db, batch_date=empty, model_version=MODEL).read_text()
    page = assert_self_contained(text)
    assert "Empty night" in text and "No predictions this night" in text
    assert all(image["src"].startswith("data:image/png;base64,") for image in page.images())


def test_nightly_report_without_a_database_row_for_the_model_shows_the_night_alone(tmp_path):
    engine = database.connect(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    try:
        text = night_page(tmp_path / "night.html", engine, batch_date=NIGHTS[0], model_version="unknown").read_text()
    finally:
        database.dispose_all()
    assert "No drift figures" in text and "No labels have arrived" in text


def test_near_duplicates_are_described_by_what_joined_them():
    from pipeline.rendering.reports.evaluation import near_duplicate_line

    found = {"groups": 2, "examples": 5, "threshold": 3, "kept_together": True, "straddling": 0}
    table = near_duplicate_line({**found, "by": "equal values", "pairs": [{"a": "r1", "b": "r7"}]})
    assert "equal values, text without case and punctuation" in table and "bits" not in table
    images = near_duplicate_line({**found, "by": "image hash", "pairs": [{"a": "a", "b": "b", "bits_apart": 2}]})
    assert "threshold 3 bits of 64" in images
