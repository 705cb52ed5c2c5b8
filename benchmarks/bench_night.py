"""A night scored and logged the project's way against the script a user would write instead.

Same night file (8 numeric and 1 categorical column), same model, same fitted preprocessor, same
migrated `predictions` table (indexes included), in one process, rounds alternated, medians:

- the project: `score_batch` into a NightScores folder, then `prediction_log.load_batch` (what
  BatchPredict and LogPredictions do: validation with rejects, example ids, Parquet outputs,
  the batch row, one transaction);
- the script: `pandas.read_csv` in chunks of 50,000, `features.transform`, `model.predict` with
  Keras' defaults, softmax and argmax, the probabilities as JSON, then `sqlite3.executemany`
  (SQLite) or psycopg2 `copy_expert` (PostgreSQL), one commit. The script checks nothing.
  A second script, `model.predict(batch_size=8192)`, shows the same on a tuned script.
- images: a night of PNG files (scikit-learn's digits, copied under new names) scored by the
  project against a script of PIL decode, `model.predict`, softmax and executemany (SQLite).

Each size runs in its own process: `python -m benchmarks.bench_night ROWS BACKEND...` or
`python -m benchmarks.bench_night IMAGES images`.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import sqlite3
import statistics
import sys
import time
import uuid
from itertools import repeat
from pathlib import Path

import numpy as np

from benchmarks.bench_scoring import CHUNK_ROWS, _frame, trained_model
from benchmarks.common import Result, run_child, scratch_folder

POSTGRES_URL = os.environ.get("OVERNIGHT_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
ROUNDS = 3
TARGET = ">= 0.8"
INSERT = (
    "INSERT INTO {table} (batch_date, example_id, model_version, prediction, score, probabilities) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def results(sizes: tuple[int, ...], images: int, *, postgres: bool = True) -> list[Result]:
    backends = ["sqlite", "postgresql"] if postgres else ["sqlite"]
    found = []
    for rows in sizes:
        measured = run_child("benchmarks.bench_night", str(rows), *backends, timeout=3600)
        for backend in backends:
            figures = measured[backend]
            name = "SQLite" if backend == "sqlite" else "PostgreSQL"
            found.append(
                Result(
                    f"night scored and logged, {name}, {rows:,} rows",
                    rows / figures["project"],
                    rows / figures["script"],
                    "rows/s",
                    TARGET,
                    f"baseline: read_csv, transform, model.predict (Keras defaults), "
                    f"{'executemany' if backend == 'sqlite' else 'COPY'}; against the tuned script "
                    f"(batch_size=8192, {rows / figures['tuned']:,.0f} rows/s) the ratio is "
                    f"{figures['tuned'] / figures['project']:.2f}",
                )
            )
    pictures = run_child("benchmarks.bench_night", str(images), "images", timeout=3600)
    found.append(
        Result(
            f"night of {images:,} PNG files scored and logged, SQLite",
            images / pictures["project"],
            images / pictures["script"],
            "images/s",
            TARGET,
            "baseline: PIL open, convert, resize, model.predict (Keras defaults), executemany",
        )
    )
    return found


def measure_images(count: int) -> dict:
    """Medians of ROUNDS alternated runs of the project's and the script's image night."""
    import shutil

    import models
    from pipeline.common.columns import IMAGE_ID_COLUMN, IMAGE_PATH_COLUMN
    from pipeline.examples import write_digits
    from pipeline.stages import features, raw
    from pipeline.stages.schema import Schema
    from pipeline.store import database

    folder = scratch_folder("bench-night-images-")
    write_digits(folder / "training")
    table = raw.read_image_folder(folder / "training", "label")
    schema = Schema(label="label", task="classification", id_column=IMAGE_ID_COLUMN, kinds={IMAGE_PATH_COLUMN: "image"})
    preprocessor = features.fit(table, schema)
    model = models.build_model("cnn", preprocessor.model_spec())
    night = folder / "incoming"
    night.mkdir()
    sources = table[IMAGE_PATH_COLUMN].tolist()
    for number in range(count):
        shutil.copyfile(sources[number % len(sources)], night / f"night-{number:06d}.png")
    times = {"project": [], "script": []}
    with _Databases("sqlite", folder) as (engine, insert):
        for number in range(ROUNDS):
            date = datetime.date(2026, 1, 1) + datetime.timedelta(days=number)
            times["project"].append(
                _project(night, folder / f"images-{number}", preprocessor, model, engine, date, images=True)
            )
            times["script"].append(_image_script(night, preprocessor, model, insert, date))
    database.dispose_all()
    return {path: statistics.median(seconds) for path, seconds in times.items()}


def _image_script(night: Path, preprocessor, model, insert, date: datetime.date) -> float:
    """PIL decode, resize, scale, predict, insert: what a user writes for a folder of images."""
    from PIL import Image
    from scipy.special import softmax

    from pipeline.stages.preprocessor import input_name

    ((column, shape),) = preprocessor.image.items()
    classes = np.asarray(preprocessor.classes)
    begin = time.perf_counter()
    files = sorted(night.iterdir())
    for start in range(0, len(files), CHUNK_ROWS):
        part = files[start : start + CHUNK_ROWS]
        pixels = []
        for file in part:
            with Image.open(file) as image:
                pixels.append(
                    np.asarray(image.convert("L").resize((shape.width, shape.height)), dtype="float32") / 255.0
                )
        inputs = {input_name("image", column): np.stack(pixels)[..., None]}
        probabilities = softmax(model.predict(inputs, verbose=0), axis=1)
        best = probabilities.argmax(axis=1)
        texts = [json.dumps(dict(zip(preprocessor.classes, row))) for row in probabilities.round(6).tolist()]
        insert(
            list(
                zip(
                    repeat(date.isoformat()),
                    [file.stem for file in part],
                    repeat("script-images"),
                    classes[best],
                    probabilities.max(axis=1).tolist(),
                    texts,
                )
            )
        )
    insert(None)
    return time.perf_counter() - begin


def measure(rows: int, backends: list[str]) -> dict:
    """Medians of ROUNDS alternated runs of each path per backend, in seconds."""
    from pipeline.store import database

    folder = scratch_folder("bench-night-")
    preprocessor, model = trained_model()
    night = folder / "incoming"
    night.mkdir()
    for start in range(0, rows, 200_000):
        _frame(min(200_000, rows - start), 1 + start, labeled=False).to_csv(
            night / "night.csv", mode="a", header=start == 0, index=False
        )
    figures = {}
    for backend in backends:
        with _Databases(backend, folder) as (engine, insert):
            times = {"project": [], "script": [], "tuned": []}
            for number in range(ROUNDS):
                date = datetime.date(2026, 1, 1) + datetime.timedelta(days=number)
                times["project"].append(
                    _project(night, folder / f"{backend}-{number}", preprocessor, model, engine, date)
                )
                times["script"].append(_script(night / "night.csv", preprocessor, model, insert, date, None))
                times["tuned"].append(_script(night / "night.csv", preprocessor, model, insert, date, 8192))
            figures[backend] = {path: statistics.median(seconds) for path, seconds in times.items()}
        database.dispose_all()
    return figures


def _project(night: Path, out: Path, preprocessor, model, engine, date: datetime.date, *, images=False) -> float:
    from pipeline.artifacts.prediction import NightScores
    from pipeline.stages import raw
    from pipeline.stages.prediction import score_batch
    from pipeline.store import prediction_log

    out.mkdir()
    begin = time.perf_counter()
    scores = NightScores(out)
    with scores.sink(preprocessor.schema) as sink:
        column = next(iter(preprocessor.image)) if images else None
        sources = raw.batch_sources(night, image_column=column, chunk_rows=CHUNK_ROWS)
        summary = score_batch(sources, preprocessor, model, sink)
    prediction_log.load_batch(
        engine,
        batch_date=date,
        model_version="m",
        predictions=scores.prediction_chunks(),
        rows_in=summary.rows_in,
        rows_rejected=summary.rows_rejected,
    )
    return time.perf_counter() - begin


def _script(night_csv: Path, preprocessor, model, insert, date: datetime.date, batch_size: int | None) -> float:
    """What a user writes instead: no validation, no rejects, no ids but the file's."""
    import pandas as pd
    from scipy.special import softmax

    from pipeline.stages import features

    classes = np.asarray(preprocessor.classes)
    begin = time.perf_counter()
    rows = []
    for chunk in pd.read_csv(night_csv, chunksize=CHUNK_ROWS):
        outputs = model.predict(features.transform(chunk, preprocessor), verbose=0, batch_size=batch_size)
        probabilities = softmax(outputs, axis=1)
        best = probabilities.argmax(axis=1)
        texts = [json.dumps(dict(zip(preprocessor.classes, row))) for row in probabilities.round(6).tolist()]
        rows.append(
            list(
                zip(
                    repeat(date.isoformat()),
                    chunk["id"].astype(str),
                    repeat(f"script-{batch_size}"),
                    classes[best],
                    probabilities.max(axis=1).tolist(),
                    texts,
                )
            )
        )
        insert(rows.pop())
    insert(None)  # commit
    return time.perf_counter() - begin


class _Databases:
    """The project's engine on a migrated database, and the script's insert into the same table."""

    def __init__(self, backend: str, folder: Path):
        self.backend, self.folder = backend, folder

    def __enter__(self):
        import sqlalchemy as sa

        from pipeline.store import database

        if self.backend == "sqlite":
            engine = database.connect(f"sqlite:///{self.folder / 'overnight.db'}")
            plain = sqlite3.connect(self.folder / "overnight.db", timeout=60)

            def insert(rows):
                if rows is None:
                    plain.commit()
                else:
                    plain.executemany(INSERT.format(table="predictions"), rows)

            self.close = plain.close
            return engine, insert
        base = sa.engine.make_url(POSTGRES_URL)
        self.admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
        self.schema = f"bench_{uuid.uuid4().hex[:12]}"
        with self.admin.begin() as connection:
            connection.execute(sa.schema.CreateSchema(self.schema))
        url = base.update_query_dict({"options": f"-csearch_path={self.schema}"}).render_as_string(hide_password=False)
        engine = database.connect(url)
        raw = engine.raw_connection()
        cursor = raw.cursor()

        def insert(rows):
            if rows is None:
                raw.commit()
                return
            buffer = io.StringIO()
            for row in rows:
                buffer.write("\t".join(_copy_text(value) for value in row) + "\n")
            buffer.seek(0)
            cursor.copy_expert(
                "COPY predictions (batch_date, example_id, model_version, prediction, score, probabilities) FROM STDIN",
                buffer,
            )

        self.close = raw.close
        return engine, insert

    def __exit__(self, *exc):
        import sqlalchemy as sa

        self.close()
        if self.backend != "sqlite":
            from pipeline.store import database

            database.dispose_all()
            with self.admin.begin() as connection:
                connection.execute(sa.schema.DropSchema(self.schema, cascade=True))
            self.admin.dispose()


def _copy_text(value) -> str:
    """A value in COPY's text format: backslash, tab and newline escaped."""
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


if __name__ == "__main__":
    count, backends = int(sys.argv[1]), sys.argv[2:]
    print(json.dumps(measure_images(count) if backends == ["images"] else measure(count, backends)))
