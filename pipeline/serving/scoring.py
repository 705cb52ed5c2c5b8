"""Scoring requests as the night scores files: the model's own preprocessor, the training
validation rules row by row, and every answered row journaled before the answer leaves.

Requests that arrive together are scored together: the server hands a group of them to
:meth:`Scorer.score` (pipeline/serving/batching.py), which validates them together (one
validation for the requests that send the same columns), calls the model once for all their
rows, appends every answer to the journal with one fsync, and returns each request's answer.
TensorFlow is imported when a model is loaded, not before.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import shutil
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.common.columns import EXAMPLE_ID, REASON, SOURCE_FILE, SOURCE_ROW
from pipeline.errors import DataError
from pipeline.serving.journal import Journal
from pipeline.serving.requests import RequestError
from pipeline.stages.features import transform
from pipeline.stages.prediction import predict, prediction_rows
from pipeline.stages.preprocessor import Preprocessor
from pipeline.stages.settings import MAX_IMAGE_BYTES
from pipeline.stages.validation import validate

__all__ = ["Answer", "Pending", "Scorer", "ServedModel"]

logger = logging.getLogger(__name__)

REQUEST = "request"  # the source named in a rejected row's reason: "request: column 'x' ..."
BASE64_IMAGE = "an image file's bytes in base64"


class CompiledModel:
    """The Keras model called directly inside one tf.function: a small batch costs the model's
    own time, not model.predict's data pipeline and callbacks, built on every call."""

    def __init__(self, model):
        import tensorflow as tf

        self._call = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)

    def predict_on_batch(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self._call(inputs))


@dataclass(frozen=True)
class ServedModel:
    """A registered model ready to answer: what every answer names as its version."""

    version: str
    preprocessor: Preprocessor
    model: object  # has predict_on_batch (CompiledModel)
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Pending:
    """One request's rows, waiting to be scored."""

    rows: pd.DataFrame  # as sent (pipeline/serving/requests.py)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Answer:
    """One request's answer: a row per row sent, in order, scored or rejected with its reason."""

    model_version: str
    rows: list[dict]
    scored: int
    rejected: int
    problems: list[str]


@dataclass
class _Prepared:
    pending: Pending
    valid: pd.DataFrame
    rejects: pd.DataFrame
    problems: list[str]
    id_column: str  # the data set's id column, when the request sent it; else ids are the server's


class Scorer:
    """Validates, scores and journals groups of requests with the model it is given."""

    def __init__(
        self,
        journal: Journal,
        *,
        max_image_bytes: int = MAX_IMAGE_BYTES,
        scratch: Path | None = None,
        images: Path | None = None,
    ):
        """`images`: where answered images are kept, a folder per day (Layout.online_images), so
        that the night's drift check can read them; None: not kept, and neither are the inputs
        of a model with image columns."""
        self.journal = journal
        self.max_image_bytes = max_image_bytes
        self.scratch = Path(scratch or tempfile.gettempdir())
        self.images = images

    def score(self, model: ServedModel, group: list[Pending]) -> list[Answer | RequestError]:
        """Each request's answer, or the RequestError that makes it unusable as a whole."""
        folder = Path(tempfile.mkdtemp(prefix="overnight-serve-", dir=self.scratch))
        try:
            prepared = self._prepare_group(model.preprocessor, group, folder)
            usable = [item for item in prepared if isinstance(item, _Prepared) and len(item.valid)]
            outputs = self._predict(model, usable)
            records, answers = [], {}
            image_columns = model.preprocessor.schema.columns_of("image")
            keep_inputs = self.images is not None or not image_columns
            for item, rows in zip(usable, outputs):
                answers[id(item)] = rows
                inputs = self._inputs_kept(item, image_columns) if keep_inputs else [None] * len(rows)
                records += _journal_records(item, rows, model.version, inputs)
            if records:
                self.journal.append(records)  # acknowledged from here: on disk, fsynced
            return [
                item if isinstance(item, RequestError) else _answer(item, answers.get(id(item)), model.version)
                for item in prepared
            ]
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _inputs_kept(self, item: _Prepared, image_columns: list[str]) -> list[dict]:
        """Each scored row as sent, an image as its file kept under `images`, named relative to it
        (`<day>/<request>-<row>-<column>`). Kept before the journal acknowledges the row, not
        fsynced: an image lost in a power cut only leaves its row out of the drift check."""
        sent = _inputs_sent(item)
        columns = [column for column in image_columns if column in item.valid.columns]
        if not columns:
            return sent
        day = item.pending.received_at.date().isoformat()
        (self.images / day).mkdir(parents=True, exist_ok=True)
        for inputs, source_row, files in zip(
            sent, item.valid[SOURCE_ROW].tolist(), item.valid[columns].to_numpy(dtype=object).tolist()
        ):
            for column, file in zip(columns, files):
                kept = f"{day}/{item.pending.request_id}-{source_row}-{column}"
                _link_or_copy(Path(file), self.images / kept)
                inputs[column] = kept
        return sent

    def _prepare_group(self, preprocessor: Preprocessor, group: list[Pending], folder: Path) -> list:
        """Each request validated, in order. Validation costs milliseconds per call whatever its
        rows, so requests that send the same columns are validated in one call; a request that
        sends ids is validated alone (a repeated id is judged within its own request)."""
        id_column = preprocessor.schema.id_column
        together: dict[tuple, list[int]] = defaultdict(list)
        for index, pending in enumerate(group):
            alone = bool(id_column) and id_column in pending.rows.columns
            together[("alone", index) if alone else tuple(pending.rows.columns)].append(index)
        prepared: dict[int, _Prepared | RequestError] = {}
        for indices in together.values():
            prepared.update(zip(indices, self._prepare([group[index] for index in indices], preprocessor, folder)))
        return [prepared[index] for index in range(len(group))]

    def _prepare(self, requests: list[Pending], preprocessor: Preprocessor, folder: Path) -> list:
        """Requests with the same columns validated in one call, then split back per request. When
        the call fails as a whole (a missing column, a fault of the server's own), several requests
        are tried alone, so that each hears its own refusal and a fault fails only its own."""
        try:
            return self._validated(requests, preprocessor.schema, folder)
        except Exception as error:  # noqa: BLE001 - each request gets an answer, a fault a 500
            if len(requests) > 1:
                return [answer for pending in requests for answer in self._prepare([pending], preprocessor, folder)]
            return [_refusal(error, requests[0])]

    def _validated(self, requests: list[Pending], schema, folder: Path) -> list[_Prepared]:
        _refuse_unknown_columns(requests[0].rows, schema)
        # Each request's rows are told apart by SOURCE_FILE; a request alone is "request", as the
        # night names a file, so that its problem lines read the same either way.
        sources = [REQUEST] if len(requests) == 1 else [pending.request_id for pending in requests]
        frames = [
            pending.rows.assign(**{SOURCE_FILE: source, SOURCE_ROW: np.arange(len(pending.rows))})
            for pending, source in zip(requests, sources)
        ]
        joined = pd.concat(frames, ignore_index=True)
        joined, undecodable = _images_to_files(joined, schema.columns_of("image"), folder / uuid.uuid4().hex)
        result = validate(
            joined,
            schema,
            labeled=False,
            require_rows=False,
            max_image_bytes=self.max_image_bytes,
            image_root=str(folder),
            content_ids=False,  # a request without ids gets the server's (_split_off)
        )
        rejects = pd.concat([undecodable, result.rejects], ignore_index=True)
        valid_of, rejects_of = _by_source(result.valid), _by_source(rejects)
        return [
            _split_off(
                pending,
                schema,
                valid_of.get(source, result.valid.iloc[:0]),
                rejects_of.get(source, rejects.iloc[:0]),
                [problem for problem in result.problems if problem.file == source or problem.file not in sources],
            )
            for pending, source in zip(requests, sources)
        ]

    def _predict(self, model: ServedModel, usable: list[_Prepared]) -> list[pd.DataFrame]:
        """One model call for every usable row of the group, split back per request."""
        if not usable:
            return []
        preprocessor = model.preprocessor
        features = [transform(item.valid, preprocessor) for item in usable]
        joined = {name: np.concatenate([part[name] for part in features]) for name in features[0]}
        outputs = predict(model.model, joined, preprocessor)
        ids = np.concatenate([item.valid[EXAMPLE_ID].to_numpy(dtype=object) for item in usable])
        rows = prediction_rows(ids, outputs, preprocessor)
        bounds = np.cumsum([0] + [len(item.valid) for item in usable])
        return [rows.iloc[start:end].reset_index(drop=True) for start, end in zip(bounds[:-1], bounds[1:])]


def _by_source(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of a validation made for several requests, by SOURCE_FILE (the request's)."""
    return {str(source): rows for source, rows in frame.groupby(SOURCE_FILE, sort=False)}


def _split_off(pending: Pending, schema, valid: pd.DataFrame, rejects: pd.DataFrame, problems: list) -> _Prepared:
    """One request's share of a validation (its rows are `valid` and `rejects`, its problems
    `problems`), named as a request alone is. Its rows' ids are the ones it sent, when the data set
    has an id column and the request sends it; otherwise the server's, `<request id>-<row>`."""
    valid = valid.assign(**{SOURCE_FILE: REQUEST}).reset_index(drop=True)
    id_column = schema.id_column if schema.id_column in pending.rows.columns else ""
    if not id_column:
        valid[EXAMPLE_ID] = [f"{pending.request_id}-{row}" for row in valid[SOURCE_ROW]]
    lines = [replace(problem, file=REQUEST).line() for problem in problems]
    return _Prepared(pending, valid, rejects.reset_index(drop=True), lines, id_column)


def _refusal(error: Exception, pending: Pending) -> RequestError:
    """What a request that cannot be prepared at all is answered (called while handling `error`)."""
    if isinstance(error, RequestError):  # an unknown column, the label sent
        return error
    if isinstance(error, DataError):  # a column the model needs is missing: no row can be scored
        return RequestError(422, str(error))
    logger.exception("request %s could not be prepared", pending.request_id)
    return RequestError(500, f"internal error (request {pending.request_id}; the server's log has the trace)")


def _refuse_unknown_columns(frame: pd.DataFrame, schema) -> None:
    known = {*schema.kinds, schema.id_column, schema.time_column, schema.group_column, schema.slice_column} - {""}
    unknown = [column for column in frame.columns if column not in known]
    if not unknown:
        return
    if schema.label in unknown:
        raise RequestError(400, f"column {schema.label!r} is the label: a request sends the model's inputs only")
    expected = ", ".join(repr(column) for column in schema.kinds)
    raise RequestError(400, f"unknown column {unknown[0]!r}; the model's inputs are {expected}")


def _images_to_files(frame: pd.DataFrame, columns: list[str], folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Image values (base64) as files in `folder`, for the one image decoder and its limits;
    (the rows, those whose value is not base64 as rejects with their reason)."""
    columns = [column for column in columns if column in frame.columns]  # a missing one: validation says so
    if not columns:
        return frame, frame.iloc[:0].assign(**{REASON: pd.Series(dtype=object)})
    folder.mkdir()
    frame = frame.copy()
    bad = pd.Series(False, index=frame.index)
    for column in columns:
        paths = []
        for position, value in enumerate(frame[column].tolist()):
            data = _base64(value)
            if data is None:  # missing: validation says so; anything else is no image
                bad.iloc[position] = bad.iloc[position] or not _missing(value)
                paths.append(None)
                continue
            path = folder / f"{column}-{position}"
            path.write_bytes(data)
            paths.append(str(path))
        frame[column] = pd.Series(paths, index=frame.index, dtype=object)
    reason = f"{', '.join(columns)}: expected {BASE64_IMAGE}"
    return frame[~bad], frame[bad].assign(**{REASON: reason})


def _base64(value) -> bytes | None:
    if isinstance(value, dict) and set(value) == {"b64"}:  # TF Serving's form
        value = value["b64"]
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        target.hardlink_to(source)  # the scratch folder usually lies beside the images: no copy
    except OSError:
        shutil.copyfile(source, target)


def _journal_records(item: _Prepared, rows: pd.DataFrame, version: str, inputs: list) -> list[dict]:
    received = item.pending.received_at
    day, at = received.date().isoformat(), received.isoformat()
    return [
        {
            "batch_date": day,
            "example_id": example_id,
            "model_version": version,
            "prediction": prediction,
            "score": None if score is None or not np.isfinite(score) else float(score),
            "probabilities": probabilities,
            "requested_at": at,
            "inputs": inputs,
        }
        for example_id, prediction, score, probabilities, inputs in zip(
            rows["example_id"], rows["prediction"], rows["score"], rows["probabilities"], inputs
        )
    ]


def _inputs_sent(item: _Prepared) -> list[dict]:
    """Each scored row as the request sent it, for the night's drift check: JSON values, missing
    ones as null."""
    chosen = item.pending.rows.iloc[item.valid[SOURCE_ROW].to_numpy()]
    columns = list(chosen.columns)
    return [dict(zip(columns, map(_json_value, row))) for row in chosen.to_numpy(dtype=object).tolist()]


def _json_value(value):
    """A value as JSON has it: numpy's numbers as Python's, a missing one (NaN, None) as null."""
    if isinstance(value, np.generic):
        value = value.item()
    return None if _missing(value) else value


def _answer(item: _Prepared, scored: pd.DataFrame | None, version: str) -> Answer:
    """Every row sent, in order: its prediction, or why it was not scored."""
    by_row: dict[int, dict] = {}
    rejects = item.rejects
    ids = rejects[item.id_column].tolist() if item.id_column else [None] * len(rejects)
    for source_row, reason, example_id in zip(rejects[SOURCE_ROW].tolist(), rejects[REASON].tolist(), ids):
        by_row[int(source_row)] = {
            "example_id": None if _missing(example_id) else str(example_id),
            "status": "rejected",
            "reason": str(reason),
        }
    if scored is not None:  # columns as lists: a request's few rows cost microseconds, not a frame's conversions
        columns = [scored[column].tolist() for column in ("example_id", "prediction", "score", "probabilities")]
        for source_row, example_id, prediction, score, probabilities in zip(item.valid[SOURCE_ROW].tolist(), *columns):
            by_row[int(source_row)] = {
                "example_id": example_id,
                "status": "ok",
                "prediction": prediction,
                "score": score,
                **({"probabilities": json.loads(probabilities)} if probabilities else {}),
            }
    rows = [by_row[position] for position in sorted(by_row)]
    return Answer(version, rows, len(item.valid), len(item.rejects), item.problems)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
