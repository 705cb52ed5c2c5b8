"""Prediction stage: load a saved model and score model inputs. Imports TensorFlow lazily."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax

from pipeline.common.columns import SOURCE_FILE, SOURCE_ROW
from pipeline.stages.features import transform
from pipeline.stages.schema import Schema

MODEL_FILE = "model.keras"


def load_model(model_dir: str | Path):
    import keras

    # safe_mode refuses lambdas and other code smuggled inside a model file.
    return keras.saving.load_model(Path(model_dir) / MODEL_FILE, safe_mode=True, compile=False)


def predict(model, features: dict[str, np.ndarray], preprocessor: dict, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (rows, classes) for classification, values (rows,) for regression."""
    from pipeline.stages.tfdata import make_dataset

    rows = len(next(iter(features.values())))
    if rows == 0:
        width = len(preprocessor.get("classes", [])) or 1
        return np.zeros((0, width)) if preprocessor["task"] == "classification" else np.zeros(0)
    dataset = make_dataset(features, None, preprocessor, batch_size=batch_size)
    outputs = np.asarray(model.predict(dataset, verbose=0), dtype="float64")  # (rows, outputs)
    if preprocessor["task"] == "classification":
        return softmax(outputs, axis=1)
    return outputs[:, 0]


@dataclass
class BatchSummary:
    rows_in: int = 0
    rows_rejected: int = 0
    rows_scored: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "rows_in": self.rows_in,
            "rows_rejected": self.rows_rejected,
            "rows_scored": self.rows_scored,
            "problems": self.problems[:100],
        }


def score_batch(
    chunks: Iterable[pd.DataFrame],
    schema: Schema,
    preprocessor: dict,
    model,
    *,
    out_dir: Path,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Validate, preprocess and score a nightly batch chunk by chunk; memory stays flat.

    Writes into out_dir: predictions.parquet (example_id, prediction, score, probabilities),
    valid.parquet (the typed rows, for drift monitoring) and rejects.csv (rows and reasons).
    Ids repeated across chunks are rejected like ids repeated within one. A file without rows
    and values the model never saw (categories, labels) are problems that reject nothing.
    """
    from pipeline.common.columns import EXAMPLE_ID, REASON
    from pipeline.stages.validation import Problem, require_columns, unseen_values, validate

    summary, seen = BatchSummary(), set()
    with (
        _ParquetAppender(out_dir / PREDICTIONS, _PREDICTION_TYPES) as predictions,
        _ParquetAppender(out_dir / VALID, _valid_types(schema)) as valid_rows,
        _CsvAppender(out_dir / REJECTS, _reject_columns(schema)) as rejects,
    ):
        for chunk in chunks:
            if chunk.empty:
                if chunk.columns.difference([SOURCE_FILE, SOURCE_ROW]).size:  # header only: wrong columns fail
                    require_columns(chunk, schema, labeled=False)
                summary.problems.append(
                    f"{chunk.attrs.get('source', 'a file')}: {chunk.attrs.get('problem', 'no rows')}; it adds no rows"
                )
                continue
            result = validate(chunk, schema, labeled=False, require_rows=False)
            # Membership one id at a time: Series.isin(set) copies the whole set every chunk, which
            # made peak memory grow with the night instead of staying flat.
            keys = _id_keys(result.valid[EXAMPLE_ID])
            repeated = np.fromiter((key in seen for key in keys.tolist()), dtype=bool, count=len(keys))
            if repeated.any():
                again = result.valid[repeated]
                rejects.append(
                    chunk.loc[
                        chunk[SOURCE_ROW].isin(again[SOURCE_ROW]) & chunk[SOURCE_FILE].isin(again[SOURCE_FILE])
                    ].assign(**{REASON: "example_id: expected a unique id (seen in an earlier chunk)"})
                )
                summary.rows_rejected += int(repeated.sum())
                summary.problems += [
                    Problem(
                        str(file),
                        EXAMPLE_ID,
                        "a unique id (seen in an earlier chunk)",
                        repr(rows[EXAMPLE_ID].iloc[0][:60]),
                        tuple(rows[SOURCE_ROW].astype(int)),
                    ).line()
                    for file, rows in again.groupby(SOURCE_FILE, sort=False)
                ]
            valid = result.valid[~repeated].reset_index(drop=True)
            seen.update(keys[~repeated].tolist())
            rejects.append(result.rejects)
            summary.rows_in += len(chunk)
            summary.rows_rejected += len(result.rejects)
            summary.problems += [problem.line() for problem in result.problems]
            summary.problems += [problem.line() for problem in unseen_values(valid, preprocessor, schema.label)]
            if len(valid):
                outputs = predict(model, transform(valid, preprocessor), preprocessor)
                predictions.append(prediction_rows(valid[EXAMPLE_ID].to_numpy(), outputs, preprocessor))
                valid_rows.append(valid[list(_valid_types(schema))])
                summary.rows_scored += len(valid)
            if progress:
                progress(summary.rows_in)
    summary.problems = list(dict.fromkeys(summary.problems))  # a column's trouble, once, not once per chunk
    return summary


def _id_keys(ids: pd.Series) -> np.ndarray:
    """64-bit hashes of example ids: a night's ids are remembered as integers, not strings (two ids
    of a million-row night share a hash with odds of about 1 in 10^7)."""
    return pd.util.hash_array(ids.astype(str).to_numpy(dtype=object))


def prediction_rows(example_ids, outputs: np.ndarray, preprocessor: dict) -> pd.DataFrame:
    """The prediction log's columns: the class (or value), its score, and every class's probability."""
    if preprocessor["task"] == "regression":
        return pd.DataFrame(
            {
                "example_id": example_ids,
                "prediction": [f"{v:.6g}" for v in outputs],
                "score": outputs.astype("float64"),
                "probabilities": None,
            }
        )
    classes = np.asarray(preprocessor["classes"])
    best = outputs.argmax(axis=1)
    probabilities = [json.dumps(dict(zip(preprocessor["classes"], np.round(row, 6).tolist()))) for row in outputs]
    return pd.DataFrame(
        {
            "example_id": example_ids,
            "prediction": classes[best],
            "score": outputs[np.arange(len(outputs)), best],
            "probabilities": probabilities,
        }
    )


PREDICTIONS = "predictions.parquet"
VALID = "valid.parquet"
REJECTS = "rejects.csv"
_PREDICTION_TYPES = {"example_id": "string", "prediction": "string", "score": "float64", "probabilities": "string"}


def _valid_types(schema: Schema) -> dict[str, str]:
    from pipeline.common.columns import EXAMPLE_ID

    types = {EXAMPLE_ID: "string"}
    types.update({column: "float64" if kind == "numeric" else "string" for column, kind in schema.kinds.items()})
    return types


class _ParquetAppender:
    """Appends DataFrame chunks to one Parquet file with a fixed schema (a chunk of all-missing
    values would otherwise change a column's type mid-file). Writes an empty file when no rows."""

    def __init__(self, path: Path, types: dict[str, str]):
        import pyarrow as pa

        self.path, self.types = path, types
        self.schema = pa.schema(
            [(name, pa.string() if kind == "string" else pa.float64()) for name, kind in types.items()]
        )

    def __enter__(self):
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(self.path, self.schema)
        return self

    def append(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        columns = {
            name: frame[name].astype("float64")
            if kind == "float64"
            else frame[name].astype(object).where(frame[name].notna(), None)
            for name, kind in self.types.items()
        }
        self.writer.write_table(
            pa.Table.from_pydict(
                {n: list(c) if self.types[n] == "string" else c.to_numpy() for n, c in columns.items()},
                schema=self.schema,
            )
        )

    def __exit__(self, *exc):
        self.writer.close()


def _reject_columns(schema: Schema) -> list[str]:
    from pipeline.common.columns import REASON

    identity = [schema.id_column] if schema.id_column else []
    return [SOURCE_FILE, SOURCE_ROW, REASON, *identity, *schema.kinds]


class _CsvAppender:
    """Rejected rows as CSV with fixed columns (files of one batch may differ), header once."""

    def __init__(self, path: Path, columns: list[str]):
        self.path, self.columns, self.rows = path, columns, 0

    def __enter__(self):
        pd.DataFrame(columns=self.columns).to_csv(self.path, index=False)
        return self

    def append(self, frame: pd.DataFrame) -> None:
        if len(frame):
            frame.reindex(columns=self.columns).to_csv(self.path, mode="a", header=False, index=False)
            self.rows += len(frame)

    def __exit__(self, *exc):
        return None
