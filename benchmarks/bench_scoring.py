"""Batch scoring end to end (validate, preprocess, predict, log) of a tabular night, in chunks.

Each size runs in its own process (`python -m benchmarks.bench_scoring ROWS`) so that its peak
memory is its own: with chunked scoring, a night ten times larger must not need ten times the memory.
"""

from __future__ import annotations

import datetime
import json
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.common import Result, peak_rss_mb, run_child, scratch_folder

COLUMNS = 8
CHUNK_ROWS = 50_000


def _frame(rows: int, seed: int, labeled: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, COLUMNS)).round(4), columns=[f"x{i}" for i in range(COLUMNS)])
    frame["colour"] = rng.choice(["red", "green", "blue"], rows)
    frame["id"] = [f"row-{seed}-{i:08d}" for i in range(rows)]
    if labeled:
        frame["label"] = np.where(frame["x0"] > 0, "yes", "no")
    return frame


def trained_model():
    """A preprocessor fitted on 2,000 rows of `_frame` and an mlp trained one epoch on them."""
    import keras

    import models
    from pipeline.stages import features
    from pipeline.stages.schema import Schema

    schema = Schema(
        label="label",
        task="classification",
        id_column="id",
        kinds={**{f"x{i}": "numeric" for i in range(COLUMNS)}, "colour": "categorical"},
    )
    training = _frame(2000, 0, labeled=True)
    preprocessor = features.fit(training, schema)
    model = models.build_model("mlp", preprocessor.model_spec())
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    labels = np.eye(2)[features.encode_labels(training["label"], preprocessor)]
    model.fit(features.transform(training, preprocessor), labels, epochs=1, verbose=0)
    return preprocessor, model


def measure(rows: int) -> dict:
    """Train a small model, write a night of `rows` rows, score and log it; time and peak memory."""
    from pipeline.artifacts.prediction import NightScores
    from pipeline.stages import raw
    from pipeline.stages.prediction import score_batch
    from pipeline.store import database, prediction_log

    folder = scratch_folder("bench-scoring-")
    preprocessor, model = trained_model()
    schema = preprocessor.schema
    night = folder / "incoming"
    night.mkdir()
    for start in range(0, rows, 200_000):  # written in parts: the writer must not be the peak
        _frame(min(200_000, rows - start), 1 + start, labeled=False).to_csv(
            night / "night.csv", mode="a", header=start == 0, index=False
        )
    engine = database.connect(f"sqlite:///{folder / 'overnight.db'}")
    begin = time.perf_counter()
    scores = NightScores(folder)
    with scores.sink(schema) as sink:
        summary = score_batch(
            raw.batch_sources(night, image_column=None, chunk_rows=CHUNK_ROWS), preprocessor, model, sink
        )
    chunks = scores.prediction_chunks()
    logged = prediction_log.load_batch(
        engine,
        batch_date=datetime.date(2026, 1, 1),
        model_version="m",
        predictions=chunks,
        rows_in=summary.rows_in,
        rows_rejected=summary.rows_rejected,
    )
    seconds = time.perf_counter() - begin
    return {
        "rows": rows,
        "scored": summary.rows_scored,
        "logged": logged,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def results(large: int) -> list[Result]:
    small = run_child("benchmarks.bench_scoring", str(large // 10))
    big = run_child("benchmarks.bench_scoring", str(large))
    if big["logged"] != large:
        raise RuntimeError(f"scored {big['scored']} and logged {big['logged']} of {large} rows")
    return [
        Result(
            f"batch scoring end to end, {large:,} rows",
            large / big["seconds"],
            None,
            "rows/s",
            ">= 0",
            "validate, preprocess, predict, log to SQLite; no target, reported",
        ),
        Result(
            f"peak memory {large:,} vs {large // 10:,} rows",
            big["peak_rss_mb"],
            small["peak_rss_mb"],
            "MB",
            "<= 1.3",
            f"chunks of {CHUNK_ROWS:,} rows; TensorFlow's own memory included in both",
        ),
    ]


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
