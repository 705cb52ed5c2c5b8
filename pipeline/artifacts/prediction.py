"""08_prediction/<date>/<version>/: a night's scores, its typed valid rows, its rejects, its counts.

A night may hold millions of rows, so scoring streams: `NightScores.sink(schema)` hands the
stage a `ScoreSink` that appends each scored chunk to the three files, whose columns and types
are fixed up front (a chunk of all-missing values must not change a column's type mid-file).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.artifacts.folder import StageFolder, read_json, write_json
from pipeline.common.columns import EXAMPLE_ID, REASON, SOURCE_FILE, SOURCE_ROW
from pipeline.stages.contract import Schema

if TYPE_CHECKING:  # loaded by the functions that need it: `import tasks` stays light
    import pandas as pd

PREDICTIONS = "predictions.parquet"  # example_id, prediction, score, probabilities
VALID = "valid.parquet"  # the typed rows that were scored, for drift monitoring
REJECTS = "rejects.csv"  # rows that could not be scored, and why
BATCH = "batch.json"  # date, model, status, rows in, rejected and scored, problems, quarantined files
QUARANTINE = "quarantine"  # copies of the night's small files that could not be used, bytes intact
QUARANTINE_REASONS = "quarantine.csv"  # file, reason, bytes, sha256, copy (empty: not copied)
QUARANTINE_COPY_BYTES = 1 << 20  # a larger file is kept by reference (size, hash), never copied whole
QUARANTINE_HASH_BYTES = 64 << 20  # a larger one by its size alone: hashing gigabytes would stall the night
# Each prediction's file and row: a shard's rows that repeat an earlier shard's id are rejected
# when the night's shards are merged (pipeline/artifacts/shards.py), and a rejected row names both.
PREDICTION_TYPES = {
    "example_id": "string",
    "prediction": "string",
    "score": "float64",
    "probabilities": "string",
    SOURCE_FILE: "string",
    SOURCE_ROW: "int64",
}


class NightScores(StageFolder):
    FILES = (PREDICTIONS, VALID, REJECTS, BATCH)

    def summary(self) -> dict:
        return read_json(self.file(BATCH))

    def predictions(self, columns: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.file(PREDICTIONS), columns=columns)

    def prediction_chunks(self, rows: int = 100_000) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        for part in pq.ParquetFile(self.file(PREDICTIONS)).iter_batches(batch_size=rows):
            yield part.to_pandas()

    def valid_rows(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.file(VALID))

    @property
    def rejects_path(self):
        return self.path / REJECTS

    @property
    def quarantine_path(self):
        return self.path / QUARANTINE

    @contextmanager
    def sink(self, schema: Schema) -> Iterator[ScoreSink]:
        with (
            _ParquetAppender(self.path / PREDICTIONS, PREDICTION_TYPES) as predictions,
            _ParquetAppender(self.path / VALID, valid_types(schema)) as valid,
            _CsvAppender(self.path / REJECTS, reject_columns(schema)) as rejects,
        ):
            yield ScoreSink(predictions, valid, rejects, self.path)

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / BATCH, summary)


class ScoreSink:
    """Where scoring puts each chunk: its predictions, its scored rows, its rejected rows."""

    def __init__(self, predictions: _ParquetAppender, valid: _ParquetAppender, rejects: _CsvAppender, folder):
        self._predictions, self._valid, self._rejects, self._folder = predictions, valid, rejects, Path(folder)

    @property
    def valid_columns(self) -> list[str]:
        return list(self._valid.types)

    def scored(self, predictions: pd.DataFrame, valid: pd.DataFrame) -> None:
        self._predictions.append(predictions)
        self._valid.append(valid)

    def rejected(self, rows: pd.DataFrame) -> None:
        self._rejects.append(rows)

    def quarantine(self, file: Path, reason: str, *, readable: bool = True) -> None:
        """A file the night could not use, with its reason beside rejects.csv: a copy of a regular
        file of at most QUARANTINE_COPY_BYTES, a reference (path, reason, size, SHA-256) otherwise.

        Copied, not moved: the night's files keep their fingerprint, so the night keeps its
        identity (a rerun says "partial" again until the file is fixed in place or replaced). A
        large file (a 2 GiB sparse one would take 2 GiB of disk) stays where it is, named by its
        size (and hash, up to QUARANTINE_HASH_BYTES); a file refused unread (`readable` false: a
        link out of the night folder, a FIFO) is named by its path and reason alone, never opened.
        """
        import pandas as pd

        from pipeline.common.files import file_sha256

        entry = {"file": str(file), "reason": reason, "bytes": "", "sha256": "", "copy": ""}
        if readable:
            size = os.stat(file).st_size
            entry.update(bytes=size, sha256=file_sha256(file) if size <= QUARANTINE_HASH_BYTES else "")
            if size <= QUARANTINE_COPY_BYTES:
                folder = self._folder / QUARANTINE
                folder.mkdir(exist_ok=True)
                target = free_name(folder, file.name)
                shutil.copy2(file, target)
                entry["copy"] = target.relative_to(self._folder).as_posix()
        reasons = self._folder / QUARANTINE_REASONS
        pd.DataFrame([entry]).to_csv(reasons, mode="a", header=not reasons.exists(), index=False)


def free_name(folder: Path, name: str) -> Path:
    """folder/name, or folder/name.2, name.3 ... when files of two sub-folders share a name."""
    candidate, number = folder / name, 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{name}.{number}"
    return candidate


VALID_TYPES = {"numeric": "float64", "datetime": "timestamp"}  # other kinds are kept as text


def valid_types(schema: Schema) -> dict[str, str]:
    types = {EXAMPLE_ID: "string"}
    types.update({column: VALID_TYPES.get(kind, "string") for column, kind in schema.kinds.items()})
    return types


def reject_columns(schema: Schema) -> list[str]:
    identity = [schema.id_column] if schema.id_column else []
    return [SOURCE_FILE, SOURCE_ROW, REASON, *identity, *schema.kinds]


class _ParquetAppender:
    """Appends DataFrame chunks to one Parquet file with a fixed schema. Writes an empty file when
    no rows come."""

    def __init__(self, path, types: dict[str, str]):
        import pyarrow as pa

        self.path, self.types = path, types
        arrow = {
            "string": pa.string(),
            "float64": pa.float64(),
            "int64": pa.int64(),
            "timestamp": pa.timestamp("ns", tz="UTC"),
        }
        self.schema = pa.schema([(name, arrow[kind]) for name, kind in types.items()])

    def __enter__(self):
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(self.path, self.schema)
        return self

    def append(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        columns = {name: self._column(frame[name], kind) for name, kind in self.types.items()}
        self.writer.write_table(pa.Table.from_pydict(columns, schema=self.schema))

    @staticmethod
    def _column(values: pd.Series, kind: str):
        import pandas as pd
        import pyarrow as pa

        if kind in ("float64", "int64"):
            return values.astype(kind).to_numpy()
        if kind == "timestamp":
            return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
        if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
            return pa.array(values, type=pa.string(), from_pandas=True)  # Arrow strings: no Python objects
        return list(values.astype(object).where(values.notna(), None))

    def __exit__(self, *exc):
        self.writer.close()


class _CsvAppender:
    """Rejected rows as CSV with fixed columns (files of one night may differ), header once."""

    def __init__(self, path, columns: list[str]):
        self.path, self.columns, self.rows = path, columns, 0

    def __enter__(self):
        import pandas as pd

        pd.DataFrame(columns=self.columns).to_csv(self.path, index=False)
        return self

    def append(self, frame: pd.DataFrame) -> None:
        if len(frame):
            frame.reindex(columns=self.columns).to_csv(self.path, mode="a", header=False, index=False)
            self.rows += len(frame)

    def __exit__(self, *exc):
        return None
