"""A scoring request's body as rows: MLflow's scoring protocol, so that its clients work unchanged.

`POST /invocations` takes JSON with exactly one of four fields (MLflow's names):

- `dataframe_split`: {"columns": [...], "data": [[...], ...]} (pandas' split orient; `index` is
  allowed and ignored);
- `dataframe_records`: [{"column": value, ...}, ...];
- `instances`: rows as records, as TF Serving's row format;
- `inputs`: columns as {"column": [values...]}, or rows as records.

or CSV (`Content-Type: text/csv`, a header line first). A value is a number, text, true/false or
null; an image column's value is the image file's bytes in base64 (pipeline/serving/scoring.py
decodes it), never a path on the server.

Everything that makes the whole body unusable is a RequestError with the HTTP status and one
line saying what to change.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable

import pandas as pd

__all__ = ["SHAPES", "RequestError", "rows_from_body"]

SHAPES = ("dataframe_split", "dataframe_records", "instances", "inputs")
_ALLOWED_EXTRA = ("params",)  # MLflow clients may send it: inference parameters, which no model here takes


class RequestError(Exception):
    """A request that cannot be scored at all: the status to answer and the line to say."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def rows_from_body(body: bytes, content_type: str, *, max_rows: int) -> pd.DataFrame:
    """The request's rows, one column per field named, values as sent (object dtype).

    Raises:
        RequestError: 400 for a body that is not one of the shapes (malformed JSON, two shapes,
            a nested value), 415 for another content type, 413 for more than max_rows rows.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "text/csv":
        frame = _csv(body)
    elif kind in ("application/json", ""):
        frame = _json(body)
    else:
        raise RequestError(
            415,
            f"Content-Type {kind!r}: send application/json (MLflow's shapes) or text/csv "
            "(curl: -H 'Content-Type: application/json')",
        )
    if len(frame) > max_rows:
        raise RequestError(413, f"{len(frame)} rows in one request; at most {max_rows} ([serve] max_rows)")
    _refuse_repeated_columns(frame)
    return frame.reset_index(drop=True)


def _refuse_repeated_columns(frame: pd.DataFrame) -> None:
    if frame.columns.duplicated().any():
        raise RequestError(400, f"column {frame.columns[frame.columns.duplicated()][0]!r} given twice")


def _csv(body: bytes) -> pd.DataFrame:
    try:
        return pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise RequestError(400, f"the CSV body cannot be read: {str(error).splitlines()[0]}") from None


def _json(body: bytes) -> pd.DataFrame:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(400, f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise RequestError(400, f"the body must be a JSON object with one of {', '.join(SHAPES)}")
    shapes = [key for key in SHAPES if key in document]
    unknown = sorted(set(document) - set(SHAPES) - set(_ALLOWED_EXTRA))
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r}: the body takes exactly one of {', '.join(SHAPES)}")
    if len(shapes) != 1:
        found = f"{' and '.join(shapes)} together" if shapes else "none of them"
        raise RequestError(400, f"the body takes exactly one of {', '.join(SHAPES)}; found {found}")
    if document.get("params"):
        raise RequestError(400, "'params': this model takes no inference parameters")
    shape = shapes[0]
    frame = _READERS[shape](document[shape], shape)
    _refuse_repeated_columns(frame)
    _refuse_nested(frame, shape)
    return frame


def _split(value, shape: str) -> pd.DataFrame:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
        raise RequestError(400, f'{shape} must be {{"columns": [...], "data": [[...], ...]}}')
    columns, data = value["columns"], value.get("data", [])
    if not all(isinstance(column, str) for column in columns):
        raise RequestError(400, f"{shape}.columns must be names (text)")
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise RequestError(400, f"{shape}.data must be a list of rows, each a list of values")
    for position, row in enumerate(data):
        if len(row) != len(columns):
            raise RequestError(400, f"{shape}.data[{position}] has {len(row)} values for {len(columns)} columns")
    return pd.DataFrame(data, columns=columns, dtype=object)


def _records(value, shape: str) -> pd.DataFrame:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise RequestError(400, f'{shape} must be a list of rows, each {{"column": value, ...}}')
    columns = list(dict.fromkeys(column for row in value for column in row))
    return pd.DataFrame.from_records(value, columns=columns).astype(object)


def _inputs(value, shape: str) -> pd.DataFrame:
    if isinstance(value, list):
        return _records(value, shape)
    if not isinstance(value, dict) or not all(isinstance(values, list) for values in value.values()):
        raise RequestError(400, f'{shape} must be columns {{"column": [values...]}} or a list of rows')
    lengths = {len(values) for values in value.values()}
    if len(lengths) > 1:
        raise RequestError(400, f"{shape}: the columns have different lengths ({', '.join(map(str, sorted(lengths)))})")
    return pd.DataFrame({column: pd.Series(values, dtype=object) for column, values in value.items()})


_READERS = {"dataframe_split": _split, "dataframe_records": _records, "instances": _records, "inputs": _inputs}


def _refuse_nested(frame: pd.DataFrame, shape: str) -> None:
    for column in frame.columns:
        nested = _positions(frame[column], lambda value: isinstance(value, dict | list))
        if nested:
            raise RequestError(
                400, f"{shape}: column {column!r} holds a JSON object or list (rows {_rows(nested)}); send a value"
            )


def _positions(values: pd.Series, test) -> list[int]:
    return [position for position, value in enumerate(values.tolist()) if test(value)]


def _rows(positions: Iterable[int], limit: int = 5) -> str:
    positions = list(positions)
    shown = ", ".join(map(str, positions[:limit]))
    return shown + (f" and {len(positions) - limit} more" if len(positions) > limit else "")
