"""Bad input (issue 5, item 3): every malformed input of corpus.py as training data and as a
nightly batch; images; SQL-looking text through the prediction log on both databases; and three
cases through `luigi --module tasks ValidateData` as a person runs it.

Each case ends in one of two ways. A DataError: one line that names the file (and the column,
rows or line where they exist); the run stops, so nothing is half-done and no row is lost. Or a
handling: exactly so many rows kept and so many rejected, each with its reason, and kept +
rejected = the rows in the file (no row lost). docs/bad-input.md is the table of these cases.

Training data goes through pipeline.stages.raw.read_raw, schema.infer_schema and validation.validate;
a night through raw.batch_sources (chunks of 16 rows) and prediction.score_batch with an untrained
model: its scores do not matter, only which rows it scores.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from models import ArchitectureSettings, build_model
from pipeline.artifacts.prediction import NightScores
from pipeline.common.columns import EXAMPLE_ID, IMAGE_PATH_COLUMN, REASON
from pipeline.errors import DataError
from pipeline.stages import features
from pipeline.stages.prediction import score_batch
from pipeline.stages.raw import batch_sources, read_feedback, read_raw
from pipeline.stages.schema import DatasetConfig, infer_schema
from pipeline.stages.validation import validate
from tests.reliability.corpus import (
    BASE_ROWS,
    CASES,
    CHUNK_ROWS,
    IMAGE_CASES,
    IMAGE_SIZE,
    LABEL,
    ROW,
    SQL_TEXT,
    Case,
    Expect,
    bad_image,
    csv_text,
    good_rows,
    png,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).with_name("luigi"))
SMALL = ArchitectureSettings(width=8, embedding_dim=2, text_embedding_dim=4, filters=(4,))
BY_NAME = {case.name: case for case in CASES}


# --- fixtures: a schema, preprocessor and (untrained) model from good data ----------------------


def _fitted(path: Path, config: DatasetConfig, architecture: str):
    table = read_raw(path, LABEL)
    schema = infer_schema(table, config)
    preprocessor = features.fit(validate(table, schema).valid, schema)
    return schema, preprocessor, build_model(architecture, preprocessor.model_spec(), SMALL)


def _tabular_config(path: Path, **overrides) -> DatasetConfig:
    return DatasetConfig(path=str(path), label=LABEL, id_column="id", time_column="day", **overrides)


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    path = tmp_path_factory.mktemp("training") / "train.csv"
    path.write_text(csv_text(good_rows(), labeled=True))
    schema, preprocessor, model = _fitted(path, _tabular_config(path), "auto")
    assert schema.kinds == {"colour": "categorical", "size": "numeric", "note": "text"}
    return schema, preprocessor, model


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """An image folder's schema (image, label, image_id), preprocessor and a tiny cnn."""
    root = tmp_path_factory.mktemp("images") / "train"
    for i in range(6):
        png(root / ("cat" if i % 2 else "dog") / f"t{i}.png", shade=i * 40)
    return _fitted(root, DatasetConfig(path=str(root), label=LABEL), "cnn")


# --- the corpus, both ways ----------------------------------------------------------------------


def _case_path(folder: Path) -> Path:
    """The one file a case wrote (as [dataset] path names a file), or the folder of several."""
    files = list(folder.iterdir())
    return files[0] if len(files) == 1 else folder


def _assert_one_line_naming_a_file(error: DataError, folder: Path) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert str(folder) in message, message


def _assert_handled(expect: Expect, rows: int, valid: int, reasons: list[str], problems: list[str]) -> None:
    assert valid == expect.valid, problems
    assert len(reasons) == expect.rejected, reasons
    for reason, wanted in zip(reasons, expect.reasons):
        assert wanted in reason, (wanted, reason)
    for wanted in expect.problems:
        assert any(wanted in line for line in problems), (wanted, problems)
    assert valid + len(reasons) == rows, "a row was lost"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_training_data(case: Case, tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    rows = case.write(folder, True)
    path = _case_path(folder)
    config = _tabular_config(path, kinds=case.kinds)
    if case.training.error:
        with pytest.raises(DataError, match=case.training.error) as error:
            table = read_raw(path, LABEL)
            validate(table, infer_schema(table, config))
        _assert_one_line_naming_a_file(error.value, folder)
        return
    table = read_raw(path, LABEL)
    result = validate(table, infer_schema(table, config))
    _assert_handled(
        case.training,
        rows,
        len(result.valid),
        result.rejects[REASON].tolist(),
        [problem.line() for problem in result.problems],
    )
    CONTENT.get(case.name, lambda valid, labeled: None)(result.valid, True)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_nightly_batch(case: Case, tmp_path, tabular):
    schema, preprocessor, model = tabular
    night, out = tmp_path / "incoming", tmp_path / "scored"
    night.mkdir()
    out.mkdir()
    rows = case.write(night, False)
    sources = batch_sources(night, image_column=None, chunk_rows=CHUNK_ROWS)
    if case.nightly.error:
        # One bad file does not sink the night: it is quarantined with its one-line reason, bytes intact.
        summary = _score(sources, preprocessor, model, out)
        assert summary.status == "partial", summary.problems
        matched = [q for q in summary.quarantined if re.search(case.nightly.error, q["reason"])]
        assert matched, summary.quarantined
        for quarantined in matched:
            _assert_one_line_naming_a_file(DataError(quarantined["reason"]), night)
            copy = out / "quarantine" / Path(quarantined["file"]).name
            assert copy.read_bytes() == Path(quarantined["file"]).read_bytes()
        return
    summary = _score(sources, preprocessor, model, out)
    predictions, valid, rejects = _outputs(out)
    _assert_handled(case.nightly, rows, summary.rows_scored, rejects[REASON].tolist(), summary.problems)
    assert (summary.rows_in, summary.rows_rejected) == (rows, len(rejects))
    assert predictions["example_id"].tolist() == valid[EXAMPLE_ID].tolist()
    assert predictions["example_id"].is_unique and predictions["score"].notna().all()
    assert len(summary.problems) == len(set(summary.problems)), "a problem is said once, not once per chunk"
    CONTENT.get(case.name, lambda valid, labeled: None)(valid, False)


def _score(chunks, preprocessor, model, out: Path):
    """score_batch into a scores folder, as BatchPredict does."""
    with NightScores(out).sink(preprocessor.schema) as sink:
        return score_batch(chunks, preprocessor, model, sink)


def _outputs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    scores = NightScores(out)
    rejects = pd.read_csv(scores.rejects_path, dtype=str, keep_default_na=False)
    return scores.predictions(), scores.valid_rows(), rejects


# What a handled case must have read, beyond the counts: (valid rows, labeled) -> None.
def _ids_are(expected):
    def check(valid, labeled):
        assert valid[EXAMPLE_ID].tolist() == expected

    return check


def _colours_clean(valid, labeled):
    assert set(valid["colour"]) == {"red", "green", "blue"}
    assert valid["size"].tolist() == [1 + i * 0.5 for i in range(BASE_ROWS)]


def _no_carriage_returns(valid, labeled):
    assert not valid["note"].str.contains("\r").any()
    assert valid["note"].tolist() == [row["note"] for row in good_rows()]


def _newlines_kept(valid, labeled):
    assert valid["note"].iloc[1] == 'first line, with a comma\nsecond line with "quotes"\r\nthird line'


def _missing_spellings(valid, labeled):
    assert valid["size"].isna().sum() == 5  # NaN, nan, NULL, "" and " NA " are missing, not words


def _thousands(valid, labeled):
    assert valid["size"].iloc[ROW - 1 : ROW + 1].tolist() == [1234.0, 12345.5]


def _european_numbers(valid, labeled):
    expected = [1 + i * 0.5 for i in range(BASE_ROWS)]
    expected[ROW - 1] = 1234.5
    assert valid["size"].tolist() == expected


def _huge_kept(valid, labeled):
    assert 3e38 in valid["size"].tolist()


def _sql_verbatim(valid, labeled):
    assert valid[EXAMPLE_ID].tolist()[: len(SQL_TEXT)] == list(SQL_TEXT)
    assert valid["colour"].tolist()[: len(SQL_TEXT)] == list(SQL_TEXT)


def _megabyte_note(valid, labeled):
    assert len(valid["note"].iloc[2]) == len("word " * ((1 << 20) // 5)) - 1  # stripped of its last space


def _one_column_fewer(valid, labeled):
    assert "Unnamed: 6" not in valid.columns and "Unnamed: 5" not in valid.columns


def _short_row_missing(valid, labeled):
    row = valid.iloc[ROW - 1]
    assert np.isnan(row["size"]) and pd.isna(row["note"]) and row["colour"] == "green"


GOOD_IDS = [f"r{i:03d}" for i in range(BASE_ROWS)]
CONTENT = {
    "byte-order-mark": _ids_are(GOOD_IDS),
    "semicolon-delimiter": _ids_are(GOOD_IDS),
    "tab-delimiter": _ids_are(GOOD_IDS),
    "surrounding-whitespace": lambda valid, labeled: (
        _ids_are(GOOD_IDS)(valid, labeled),
        _colours_clean(valid, labeled),
    ),
    "crlf-line-ends": _no_carriage_returns,
    "cr-line-ends": _no_carriage_returns,
    "quoted-newlines": _newlines_kept,
    "missing-value-spellings": _missing_spellings,
    "thousands-separators": _thousands,
    "semicolon-decimal-commas": _european_numbers,
    "huge-numbers": _huge_kept,
    "sql-looking-strings": _sql_verbatim,
    "megabyte-text-and-ragged-row": _megabyte_note,
    "trailing-delimiter": _one_column_fewer,
    "ragged-short-row": _short_row_missing,
}


def test_the_corpus_is_large_every_case_is_decided_and_documented():
    total = len(CASES) + len(IMAGE_CASES) + len(EXTRA_CASES)
    assert total >= 30 and len(BY_NAME) == len(CASES)
    for case in CASES:
        for expect in (case.training, case.nightly):
            assert expect.error or expect.valid or expect.problems, case.name
    doc = (REPO_ROOT / "docs" / "bad-input.md").read_text()
    for name in [case.name for case in CASES] + [case[0] for case in IMAGE_CASES] + list(EXTRA_CASES):
        assert f"| {name} |" in doc, f"docs/bad-input.md has no row for {name}"
    errors = [sum(bool(getattr(case, side).error) for case in CASES) for side in ("training", "nightly")]
    assert f"**{total}**" in doc and f"| {errors[0]} training table cases |" in doc
    assert f"| {errors[1]} nightly table cases: the file is named with its one-line reason" in doc  # quarantined


# Cases proved by their own tests below, counted with the corpus in docs/bad-input.md.
EXTRA_CASES = (
    "missing-image-file",
    "sql-looking-strings-in-the-database",
    "unseen-label-in-feedback",
    "unreadable-feedback-file",
)


# --- the training schema against the file -------------------------------------------------------


def test_unknown_extra_column_in_training_data_becomes_a_feature(tmp_path):
    BY_NAME["unknown-extra-column"].write(tmp_path, True)
    table = read_raw(tmp_path / "extra.csv", LABEL)
    assert infer_schema(table, _tabular_config(tmp_path)).kinds["extra"] == "numeric"


# --- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, what, file_name, kind, reason", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # huge-first-image: 144 million pixels
def test_image_folder_training_data(name, what, file_name, kind, reason, tmp_path):
    root = tmp_path / "images"
    for i in range(4):
        png(root / ("cat" if i % 2 else "dog") / f"t{i}.png", shade=i * 50)
    bad = bad_image(kind, root / "cat" / file_name)
    table = read_raw(root, LABEL)
    schema = infer_schema(table, DatasetConfig(path=str(root), label=LABEL))
    result = validate(table, schema)
    assert len(result.valid) + len(result.rejects) == 5
    if reason:
        assert result.rejects[REASON].tolist() == [reason]
        assert result.rejects[IMAGE_PATH_COLUMN].tolist() == [str(bad)]
    else:
        assert result.rejects.empty and str(bad) in result.valid[IMAGE_PATH_COLUMN].tolist()
    # No one image sizes the model, the first one included (issue 19, item 6): the folder's median does.
    shape = features.fit(result.valid, schema).image[IMAGE_PATH_COLUMN]
    assert (shape.height, shape.width) == IMAGE_SIZE


@pytest.mark.parametrize("name, what, file_name, kind, reason", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # huge-first-image: 144 million pixels
def test_image_night(name, what, file_name, kind, reason, tmp_path, images):
    schema, preprocessor, model = images
    night, out = tmp_path / "incoming", tmp_path / "scored"
    out.mkdir()
    for i in range(3):
        png(night / f"n{i}.png", shade=30 + i * 60)
    bad_image(kind, night / file_name)
    summary = _score(
        batch_sources(night, image_column=IMAGE_PATH_COLUMN, chunk_rows=CHUNK_ROWS), preprocessor, model, out
    )
    predictions, _, rejects = _outputs(out)
    stem = Path(file_name).stem
    assert summary.rows_in == 4 and summary.rows_scored + summary.rows_rejected == 4
    if reason:
        assert rejects[REASON].tolist() == [reason] and summary.rows_scored == 3
        assert stem not in predictions["example_id"].tolist()
        expected = reason.split(": expected ", 1)[1]
        assert any(f"{file_name}: column 'image', rows 1: expected {expected}" in line for line in summary.problems), (
            summary.problems
        )
    else:  # resized in tf.data to the training size, then scored
        assert rejects.empty and stem in predictions["example_id"].tolist()


def test_missing_image_file_is_rejected_in_training_data_and_at_night(tmp_path):
    photos = [png(tmp_path / "photos" / f"p{i}.png", shade=i * 30) for i in range(6)]
    gone = tmp_path / "photos" / "gone.png"
    train = tmp_path / "train.csv"
    train.write_text(
        "photo,label\n" + "".join(f"{p},{'cat' if i % 2 else 'dog'}\n" for i, p in enumerate(photos)) + f"{gone},cat\n"
    )
    config = DatasetConfig(path=str(train), label=LABEL, kinds={"photo": "image"})
    table = read_raw(train, LABEL)
    schema = infer_schema(table, config)
    result = validate(table, schema)
    assert (len(result.valid), result.rejects[REASON].tolist()) == (6, ["photo: expected an existing image file"])
    assert any(
        "train.csv: column 'photo', rows 7: expected an existing image file" in p.line() for p in result.problems
    )

    preprocessor = features.fit(result.valid, schema)
    model = build_model("cnn", preprocessor.model_spec(), SMALL)
    night, out = tmp_path / "incoming", tmp_path / "scored"
    night.mkdir()
    out.mkdir()
    (night / "batch.csv").write_text("photo\n" + "".join(f"{p}\n" for p in photos[:3]) + f"{gone}\n")
    summary = _score(batch_sources(night, image_column=None, chunk_rows=CHUNK_ROWS), preprocessor, model, out)
    _, _, rejects = _outputs(out)
    assert (summary.rows_scored, rejects[REASON].tolist()) == (3, ["photo: expected an existing image file"])


def test_a_bmp_at_night_for_a_grayscale_model_is_scored(tmp_path):
    root = tmp_path / "train"
    for i in range(4):
        path = root / ("cat" if i % 2 else "dog") / f"t{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8), i * 60).save(path)
    schema, preprocessor, model = _fitted(root, DatasetConfig(path=str(root), label=LABEL), "cnn")
    night = tmp_path / "incoming"
    night.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(night / "n0.bmp")
    out = tmp_path / "scored"
    out.mkdir()
    summary = _score(
        batch_sources(night, image_column=IMAGE_PATH_COLUMN, chunk_rows=CHUNK_ROWS), preprocessor, model, out
    )
    assert summary.rows_scored == 1


# --- SQL-looking text, stored verbatim end to end -----------------------------------------------


def test_sql_looking_strings_are_stored_verbatim_in_the_prediction_log(database_url, tmp_path):
    """Ids, categories and even the classes (so the prediction column too) look like SQL."""
    import sqlalchemy as sa

    from pipeline.store import database
    from pipeline.store.prediction_log import load_batch

    classes = (SQL_TEXT[0], SQL_TEXT[2])
    rows = good_rows()
    for i, row in enumerate(rows):
        row[LABEL] = classes[i % 2]
    train = tmp_path / "train.csv"
    train.write_text(csv_text(rows, labeled=True))
    schema, preprocessor, model = _fitted(train, _tabular_config(train), "auto")
    assert set(preprocessor.classes) == set(classes)
    night, out = tmp_path / "incoming", tmp_path / "scored"
    night.mkdir()
    out.mkdir()
    rows_written = BY_NAME["sql-looking-strings"].write(night, False)
    summary = _score(batch_sources(night, image_column=None, chunk_rows=CHUNK_ROWS), preprocessor, model, out)
    predictions = NightScores(out).predictions()
    assert summary.rows_scored == rows_written == len(predictions)

    engine = database.connect(database_url)
    night_date = datetime.date(2024, 2, 29)
    stored = load_batch(
        engine,
        batch_date=night_date,
        model_version="v'; DROP TABLE batches; --",
        predictions=predictions,
        rows_in=summary.rows_in,
        rows_rejected=summary.rows_rejected,
    )
    assert stored == rows_written
    with engine.connect() as connection:
        back = pd.DataFrame(
            connection.execute(
                sa.text(
                    "SELECT example_id, prediction, probabilities, model_version FROM predictions WHERE batch_date = :d"
                ),
                {"d": night_date},
            ).all(),
            columns=["example_id", "prediction", "probabilities", "model_version"],
        )
        tables_left = connection.execute(sa.text("SELECT COUNT(*) FROM batches")).scalar()
    assert tables_left == 1
    assert set(back["example_id"]) == set(predictions["example_id"]) >= set(SQL_TEXT)
    assert set(back["prediction"]) <= set(classes)
    assert set(back["model_version"]) == {"v'; DROP TABLE batches; --"}
    assert {json.dumps(sorted(json.loads(p))) for p in back["probabilities"]} == {json.dumps(sorted(classes))}


# --- late labels --------------------------------------------------------------------------------


def test_unseen_label_in_feedback_is_kept_verbatim(tmp_path):
    """A late label the model never predicted is stored as it came: it counts as a wrong prediction
    in prediction_quality_daily and becomes a class when feedback joins the training data."""
    path = tmp_path / "labels.csv"
    path.write_bytes(b"\xef\xbb\xbfid,label\nr001, maybe \nr002,yes\nr003,NULL\n")
    labels = read_feedback([path], id_column="id", label=LABEL)
    assert labels["example_id"].tolist() == ["r001", "r002", "r003"]
    assert labels["label"].tolist()[:2] == ["maybe", "yes"] and pd.isna(labels["label"].iloc[2])


def test_unreadable_feedback_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("id,label\nr001,café\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"labels\.csv: cannot be read as CSV: not UTF-8 text: byte 0xe9 .*\(line 2\)"):
        read_feedback([path], id_column="id", label=LABEL)


# --- through the command line, as a person runs it ----------------------------------------------

CLI_CASES = {
    "header-only": "header.csv: no rows (header only)",
    "missing-label-column": "nolabel.csv: missing label column 'label'",
    "binary-garbage": "garbage.csv: cannot be read as CSV",
}


def test_validate_data_on_the_command_line_exits_30_with_one_line(tmp_path):
    started = {}
    for name in CLI_CASES:
        root = tmp_path / name
        (root / "raw").mkdir(parents=True)
        BY_NAME[name].write(root / "raw", True)
        config = root / "overnight.cfg"
        config.write_text(
            f"[core]\nno_lock = true\n[overnight]\ndata_root = {root / 'data'}\n"
            f"database_url = sqlite:///{root / 'data' / 'overnight.db'}\n"
            f"[dataset]\npath = {_case_path(root / 'raw')}\nlabel = {LABEL}\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "OVERNIGHT_DATABASE_URL"}
        env.update(LUIGI_CONFIG_PATH=str(config), TF_CPP_MIN_LOG_LEVEL="2")
        # In parallel: each is a fresh interpreter importing luigi, pandas and SQLAlchemy.
        started[name] = subprocess.Popen(
            [LUIGI, "--module", "tasks", "ValidateData"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=180)
        output = stdout + stderr
        assert process.returncode == 30, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        naming = [line for line in output.splitlines() if CLI_CASES[name] in line]
        assert len(naming) == 1, output[-3000:]
        assert str(tmp_path / name / "raw") in naming[0]
