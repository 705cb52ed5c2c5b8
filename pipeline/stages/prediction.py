"""Prediction stage: score model inputs with a loaded model, and a night's files chunk by chunk.

The model is loaded by the caller (pipeline/artifacts/model.py); TensorFlow is imported only
when something is scored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.special import softmax

from pipeline.common.columns import EXAMPLE_ID, REASON, SOURCE_FILE, SOURCE_ROW
from pipeline.errors import DataError
from pipeline.stages.features import transform
from pipeline.stages.preprocessor import Preprocessor
from pipeline.stages.problems import Problem
from pipeline.stages.raw import BatchSource, count_rows
from pipeline.stages.settings import MAX_IMAGE_BYTES, ImageRules
from pipeline.stages.validation import UNIQUE_ID, require_columns, unseen_values, validate

REPEATED_ID = f"{UNIQUE_ID} (seen in an earlier chunk)"


IMAGE_BATCH = 256  # decoded images in flight at once: 256 x 224 x 224 x 3 floats is 150 MB
ARRAY_BATCH = 8192  # numbers and token ids: each call into Keras costs about 1 ms, so few calls


def predict(
    model, features: dict[str, np.ndarray], preprocessor: Preprocessor, *, batch_size: int | None = None
) -> np.ndarray:
    """Class probabilities (rows, classes) for classification, values (rows,) for regression.

    batch_size: rows per call into the model; by default IMAGE_BATCH with images, else ARRAY_BATCH.
    """
    from pipeline.stages.tfdata import image_batches

    rows = len(next(iter(features.values())))
    if rows == 0:
        return np.zeros((0, len(preprocessor.classes) or 1)) if preprocessor.is_classification else np.zeros(0)
    if preprocessor.image:
        batches = image_batches(features, preprocessor, batch_size=batch_size or IMAGE_BATCH)
        outputs = np.concatenate([model.predict_on_batch(batch) for batch in batches])
    else:
        # predict_on_batch per slice: a third of model.predict's time on a chunk, which builds
        # a tf.data pipeline and a progress callback every call.
        size = batch_size or ARRAY_BATCH
        outputs = np.concatenate(
            [model.predict_on_batch({k: v[i : i + size] for k, v in features.items()}) for i in range(0, rows, size)]
        )
    outputs = np.asarray(outputs, dtype="float64")  # (rows, outputs)
    if preprocessor.is_classification:
        return softmax(outputs, axis=1)
    return outputs[:, 0]


@dataclass
class BatchSummary:
    rows_in: int = 0
    rows_rejected: int = 0  # rows of quarantined files included
    rows_scored: int = 0
    rows_duplicate_id: int = 0  # rejected because an earlier row of the night had their id
    problems: list[str] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)  # {"file", "reason", "rows"} per bad file
    skipped: list[dict] = field(default_factory=list)  # {"file", "reason"} per entry left out (a hidden file)

    @property
    def status(self) -> str:
        """partial when a file was quarantined; else loaded, or empty for a night without rows."""
        if self.quarantined:
            return "partial"
        return "loaded" if self.rows_scored else "empty"

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "rows_in": self.rows_in,
            "rows_rejected": self.rows_rejected,
            "rows_scored": self.rows_scored,
            "rows_duplicate_id": self.rows_duplicate_id,
            "problems": self.problems[:100],
            "quarantined": self.quarantined,
            "skipped": self.skipped,
        }


class Sink(Protocol):
    """Where scored chunks go (pipeline/artifacts/prediction.py's ScoreSink)."""

    valid_columns: list[str]

    def scored(self, predictions: pd.DataFrame, valid: pd.DataFrame) -> None: ...

    def rejected(self, rows: pd.DataFrame) -> None: ...

    def quarantine(self, file: Path, reason: str, *, readable: bool = True) -> None: ...


def score_batch(
    sources: Iterable[BatchSource],
    preprocessor: Preprocessor,
    model,
    sink: Sink,
    *,
    progress: Callable[[int], None] | None = None,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    image_root: str = "",
) -> BatchSummary:
    """Validate, preprocess and score a nightly batch file by file, chunk by chunk; memory stays flat.

    Each chunk's predictions (example_id, prediction, score, probabilities) and typed valid rows
    go to `sink.scored`, its rejected rows with their reasons to `sink.rejected`. Ids repeated
    across chunks are rejected like ids repeated within one. A file without rows and values the
    model never saw (categories, labels) are problems that reject nothing. A file that cannot be
    read or lacks a column the model needs is quarantined (`sink.quarantine`), its rows counted
    as rejected, and the other files are scored: one bad file does not sink the night. Image
    files over max_image_bytes, or outside image_root when it is set, are rejected unread
    (`[FitPreprocessor] max_image_bytes`, `[dataset] image_root`). A file refused unread (a link
    out of the night folder, a FIFO) is quarantined by its reason alone: never opened, copied nor
    quoted. An entry left out (a hidden file, a table in an image night) is named in `skipped` and
    in a problem line.
    """
    summary, seen, images = BatchSummary(), set(), ImageRules(max_image_bytes, image_root)
    for source in sources:
        before = summary.rows_in
        if source.refused:
            _quarantine(source.file, f"{source.name}: {source.refused}: not read", sink, summary, read=0, refused=True)
            continue
        if source.skipped:
            summary.skipped.append({"file": source.name, "reason": source.skipped})
            summary.problems.append(f"{source.name}: skipped: {source.skipped}")
            continue
        try:
            for chunk in source.chunks():
                if chunk.empty:
                    _empty_chunk(chunk, preprocessor, summary)
                else:
                    _score_chunk(chunk, preprocessor, model, sink, summary, seen, images)
                if progress:
                    progress(summary.rows_in)
        except DataError as error:
            if source.file is None:
                raise  # the folder of images itself: nothing to set aside
            _quarantine(source.file, str(error), sink, summary, read=summary.rows_in - before)
    summary.problems = list(dict.fromkeys(summary.problems))  # a column's trouble, once, not once per chunk
    return summary


def _quarantine(
    file: Path, reason: str, sink: Sink, summary: BatchSummary, *, read: int, refused: bool = False
) -> None:
    # Rows read before the file failed were scored (or rejected) already; the rest count as rejected.
    # A refused file is never opened, so its rows are unknown: none are counted.
    rows = 0 if refused else max(count_rows(file) - read, 0)
    sink.quarantine(file, reason, readable=not refused)
    summary.rows_in += rows
    summary.rows_rejected += rows
    summary.quarantined.append({"file": str(file), "reason": reason, "rows": rows})
    summary.problems.append(f"{reason} (the file is quarantined; the night's other files are scored)")


def _empty_chunk(chunk: pd.DataFrame, preprocessor: Preprocessor, summary: BatchSummary) -> None:
    if chunk.columns.difference([SOURCE_FILE, SOURCE_ROW]).size:  # header only: wrong columns fail
        require_columns(chunk, preprocessor.schema, labeled=False)
    source, problem = chunk.attrs.get("source", "a file"), chunk.attrs.get("problem", "no rows")
    summary.problems.append(f"{source}: {problem}; it adds no rows")


def _score_chunk(
    chunk, preprocessor: Preprocessor, model, sink: Sink, summary: BatchSummary, seen: set, images: ImageRules
) -> None:
    result = validate(
        chunk,
        preprocessor.schema,
        labeled=False,
        require_rows=False,
        max_image_bytes=images.max_bytes,
        image_root=images.root,
    )
    # Membership one id at a time: Series.isin(set) copies the whole set every chunk, which made
    # peak memory grow with the night instead of staying flat.
    keys = _id_keys(result.valid[EXAMPLE_ID])
    repeated = np.fromiter((key in seen for key in keys.tolist()), dtype=bool, count=len(keys))
    if repeated.any():
        _reject_repeated(chunk, result.valid[repeated], sink, summary)
    valid = result.valid[~repeated].reset_index(drop=True)
    seen.update(keys[~repeated].tolist())
    sink.rejected(result.rejects)
    summary.rows_in += len(chunk)
    summary.rows_rejected += len(result.rejects)
    summary.rows_duplicate_id += _repeated_ids(result.rejects)
    summary.problems += [problem.line() for problem in result.problems]
    summary.problems += [problem.line() for problem in unseen_values(valid, preprocessor)]
    if len(valid):
        outputs = predict(model, transform(valid, preprocessor), preprocessor)
        predicted = prediction_rows(valid[EXAMPLE_ID].to_numpy(), outputs, preprocessor)
        predicted[SOURCE_FILE], predicted[SOURCE_ROW] = valid[SOURCE_FILE].to_numpy(), valid[SOURCE_ROW].to_numpy()
        sink.scored(predicted, valid[sink.valid_columns])
        summary.rows_scored += len(valid)


def _reject_repeated(chunk: pd.DataFrame, again: pd.DataFrame, sink: Sink, summary: BatchSummary) -> None:
    rows = chunk[SOURCE_ROW].isin(again[SOURCE_ROW]) & chunk[SOURCE_FILE].isin(again[SOURCE_FILE])
    sink.rejected(chunk.loc[rows].assign(**{REASON: f"{EXAMPLE_ID}: expected {REPEATED_ID}"}))
    summary.rows_rejected += len(again)
    summary.rows_duplicate_id += len(again)
    summary.problems += repeated_id_problems(again)


def repeated_id_problems(again: pd.DataFrame) -> list[str]:
    """One line per file of rows whose id an earlier row of the night had."""
    return [
        Problem(
            str(file), EXAMPLE_ID, REPEATED_ID, repr(part[EXAMPLE_ID].iloc[0][:60]), tuple(part[SOURCE_ROW].astype(int))
        ).line()
        for file, part in again.groupby(SOURCE_FILE, sort=False)
    ]


def _repeated_ids(rejects: pd.DataFrame) -> int:
    """Rejected rows whose reasons include a repeated id (a row can have several reasons)."""
    if not len(rejects) or REASON not in rejects.columns:
        return 0
    return int(rejects[REASON].astype(str).str.contains(f"expected {UNIQUE_ID}", regex=False).sum())


def _id_keys(ids: pd.Series) -> np.ndarray:
    """64-bit hashes of example ids: a night's ids are remembered as integers, not strings (two ids
    of a million-row night share a hash with odds of about 1 in 10^7)."""
    return pd.util.hash_array(ids.astype(str).to_numpy(dtype=object))


def prediction_rows(example_ids, outputs: np.ndarray, preprocessor: Preprocessor) -> pd.DataFrame:
    """The prediction log's columns: the class (or value), its score, and every class's probability."""
    if not preprocessor.is_classification:
        return pd.DataFrame(
            {
                "example_id": example_ids,
                "prediction": [f"{v:.6g}" for v in outputs],
                "score": outputs.astype("float64"),
                "probabilities": None,
            }
        )
    classes = np.asarray(preprocessor.classes)
    best = outputs.argmax(axis=1)
    return pd.DataFrame(
        {
            "example_id": example_ids,
            "prediction": classes[best],
            "score": outputs[np.arange(len(outputs)), best],
            "probabilities": probability_texts(outputs, preprocessor.classes),
        }
    )


def probability_texts(outputs: np.ndarray, classes: list[str]) -> np.ndarray:
    """Each row's probabilities as JSON, {"class": p, ...} rounded to 6 digits, column by column.

    The same text `json.dumps` gives one row at a time (NumPy prints a float64 by the same
    shortest round trip as Python), at a fifth of the time: a night's rows are many.
    """
    rounded = np.round(outputs, 6)
    finite = bool(np.isfinite(rounded).all())  # the common case: no text to mend
    text = np.full(len(outputs), "{", dtype=object)
    for index, name in enumerate(classes):
        separator = ", " if index else ""
        values = rounded[:, index].astype(str).astype(object)
        if not finite:
            values = _as_json_numbers(values)
        text = text + f"{separator}{json.dumps(name)}: " + values
    return text + "}"


def _as_json_numbers(texts: np.ndarray) -> np.ndarray:
    """NumPy's nan and inf as the NaN and Infinity `json.dumps` writes (a broken model's output
    must still read back)."""
    return pd.Series(texts).replace({"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}).to_numpy(dtype=object)
