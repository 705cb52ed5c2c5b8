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

    def __init__(self, journal: Journal, *, max_image_bytes: int = MAX_IMAGE_BYTES, scratch: Path | None = None):
        self.journal = journal
        self.max_image_bytes = max_image_bytes
        self.scratch = Path(scratch or tempfile.gettempdir())

    def score(self, model: ServedModel, group: list[Pending]) -> list[Answer | RequestError]:
        """Each request's answer, or the RequestError that makes it unusable as a whole."""
        folder = Path(tempfile.mkdtemp(prefix="overnight-serve-", dir=self.scratch))
        try:
            prepared = self._prepare_group(model.preprocessor, group, folder)
            usable = [item for item in prepared if isinstance(item, _Prepared) and len(item.valid)]
            outputs = self._predict(model, usable)
            records, answers = [], {}
            for item, rows in zip(usable, outputs):
                answers[id(item)] = rows
                records += _journal_records(item, rows, model.version)
            if records:
                self.journal.append(records)  # acknowledged from here: on disk, fsynced
            return [
                item if isinstance(item, RequestError) else _answer(item, answers.get(id(item)), model.version)
                for item in prepared
            ]
        finally:
            shutil.rmtree(folder, ignore_errors=True)

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
            requests = [group[index] for index in indices]
            if len(requests) == 1:
                answers = [self._prepare_one(preprocessor, requests[0], folder)]
            else:
                answers = self._prepare_together(preprocessor, requests, folder)
            prepared.update(zip(indices, answers))
        return [prepared[index] for index in range(len(group))]

    def _prepare_together(self, preprocessor: Preprocessor, group: list[Pending], folder: Path) -> list:
        """Requests with the same columns validated in one call, then split back per request; when
        that call fails as a whole, each request is validated alone (and fails alone)."""
        try:
            _refuse_unknown_columns(group[0].rows, preprocessor.schema)
            frames = [
                pending.rows.assign(**{SOURCE_FILE: pending.request_id, SOURCE_ROW: np.arange(len(pending.rows))})
                for pending in group
            ]
            joined = pd.concat(frames, ignore_index=True)
            images = preprocessor.schema.columns_of("image")
            joined, undecodable = _images_to_files(joined, images, folder / f"group-{group[0].request_id}")
            result = self._validate(joined, preprocessor.schema, folder)
        # A refusal of the whole call (a missing column), or a fault of the server's own: each
        # request is then validated alone, hears its own refusal, and a fault fails only its own.
        except Exception:  # noqa: BLE001
            return [self._prepare_one(preprocessor, pending, folder) for pending in group]
        rejects = pd.concat([undecodable, result.rejects], ignore_index=True)
        ids = {pending.request_id for pending in group}
        valid_of, rejects_of = _by_request(result.valid), _by_request(rejects)
        return [
            _split_off(
                pending,
                valid_of.get(pending.request_id, result.valid.iloc[:0]),
                rejects_of.get(pending.request_id, rejects.iloc[:0]),
                result.problems,
                ids,
            )
            for pending in group
        ]

    def _prepare_one(self, preprocessor: Preprocessor, pending: Pending, folder: Path) -> _Prepared | RequestError:
        """One request validated; a fault of the server's own fails that request only (500)."""
        try:
            return self._prepare(preprocessor, pending, folder)
        except Exception:
            logger.exception("request %s could not be prepared", pending.request_id)
            return RequestError(500, f"internal error (request {pending.request_id}; the server's log has the trace)")

    def _prepare(self, preprocessor: Preprocessor, pending: Pending, folder: Path) -> _Prepared | RequestError:
        schema = preprocessor.schema
        frame = pending.rows
        try:
            _refuse_unknown_columns(frame, schema)
        except RequestError as error:
            return error
        frame = frame.assign(**{SOURCE_FILE: REQUEST, SOURCE_ROW: np.arange(len(frame))})
        frame, undecodable = _images_to_files(frame, schema.columns_of("image"), folder / pending.request_id)
        try:
            result = self._validate(frame, schema, folder)
        except DataError as error:  # a column the model needs is missing: no row can be scored
            return RequestError(422, str(error))
        valid = result.valid
        id_column = schema.id_column if schema.id_column in pending.rows.columns else ""
        if not id_column:
            valid[EXAMPLE_ID] = [f"{pending.request_id}-{row}" for row in valid[SOURCE_ROW]]
        rejects = pd.concat([undecodable, result.rejects], ignore_index=True)
        return _Prepared(pending, valid, rejects, [problem.line() for problem in result.problems], id_column)

    def _validate(self, frame: pd.DataFrame, schema, folder: Path):
        """The night's validation of request rows: unlabeled, possibly all bad, images only from `folder`."""
        return validate(
            frame,
            schema,
            labeled=False,
            require_rows=False,
            max_image_bytes=self.max_image_bytes,
            image_root=str(folder),
        )

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


def _by_request(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of a validation made for several requests, by request id (SOURCE_FILE)."""
    return {str(request): rows for request, rows in frame.groupby(SOURCE_FILE, sort=False)}


def _split_off(pending: Pending, valid: pd.DataFrame, rejects: pd.DataFrame, problems: list, ids: set) -> _Prepared:
    """One request's share of a validation made for the requests `ids` (its rows are `valid` and
    `rejects`), named as a request alone would be: its own problems, and those of the whole call."""
    mine = [problem for problem in problems if problem.file == pending.request_id or problem.file not in ids]
    valid = valid.assign(**{SOURCE_FILE: REQUEST}).reset_index(drop=True)
    rejects = rejects.reset_index(drop=True)
    valid[EXAMPLE_ID] = [f"{pending.request_id}-{row}" for row in valid[SOURCE_ROW]]
    lines = [replace(problem, file=REQUEST).line() for problem in mine]
    return _Prepared(pending, valid, rejects, lines, "")


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


def _journal_records(item: _Prepared, rows: pd.DataFrame, version: str) -> list[dict]:
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
        }
        for example_id, prediction, score, probabilities in zip(
            rows["example_id"], rows["prediction"], rows["score"], rows["probabilities"]
        )
    ]


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
