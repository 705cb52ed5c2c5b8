"""A night scored in shards, merged into one night's scores: what LogPredictions loads and
MonitorDrift reads are the same files whether the night was scored in one task or in several.

Each shard scored its own files (pipeline/stages/data_files.py's shard_files), so an id that a
supplier repeated across files of two shards reached two shards' predictions. Shards are merged
in order, and a row whose id an earlier shard scored is moved to the rejects with the reason an
unsharded night gives it: the first row of an id is kept, sharded or not.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence

import numpy as np

from pipeline.artifacts.prediction import PREDICTIONS, QUARANTINE, QUARANTINE_REASONS, VALID, NightScores, free_name
from pipeline.common.columns import EXAMPLE_ID, REASON, SOURCE_FILE, SOURCE_ROW
from pipeline.stages.contract import Schema
from pipeline.stages.prediction import REPEATED_ID, id_keys, repeated_id_problems

logger = logging.getLogger(__name__)

MAX_PROBLEMS = 100  # the summary's problems, as an unsharded night keeps them
COUNTS = ("rows_in", "rows_rejected", "rows_scored", "rows_duplicate_id")


def merge_shards(
    parts: Sequence[NightScores], out: NightScores, schema: Schema, progress: Callable[[int], None] | None = None
) -> dict:
    """Write the night's scores into `out` from its shards' scores, in shard order.

    Returns:
        The night's counts, problems and quarantined files, as BatchSummary.as_dict() without
        the status (the caller knows whether the night's folder existed).
    """
    summaries = [part.summary() for part in parts]
    merged = {count: sum(int(summary.get(count, 0)) for summary in summaries) for count in COUNTS}
    problems = [line for summary in summaries for line in summary.get("problems", [])]
    seen: set[int] = set()
    with out.sink(schema) as sink:
        for part in parts:
            for predicted, valid in _row_groups(part):
                keys = id_keys(predicted[EXAMPLE_ID])
                again = np.fromiter((key in seen for key in keys.tolist()), dtype=bool, count=len(keys))
                if again.any():
                    repeated = predicted[again].reset_index(drop=True)
                    rows = valid[again].reset_index(drop=True)
                    sink.rejected(_reject_rows(repeated, rows, schema))  # columns as rejects.csv's
                    problems += repeated_id_problems(repeated)
                    merged["rows_rejected"] += int(again.sum())
                    merged["rows_scored"] -= int(again.sum())
                    merged["rows_duplicate_id"] += int(again.sum())
                seen.update(keys[~again].tolist())
                sink.scored(predicted[~again].reset_index(drop=True), valid[~again].reset_index(drop=True))
                if progress:
                    progress(len(seen))
            _append_rejects(part, out)
    quarantined = [entry for summary in summaries for entry in summary.get("quarantined", [])]
    _gather_quarantine(parts, out)
    return {**merged, "problems": list(dict.fromkeys(problems))[:MAX_PROBLEMS], "quarantined": quarantined}


def _row_groups(part: NightScores):
    """(predictions, valid rows) a row group at a time: the two files were written chunk by chunk
    together, so their row groups hold the same rows (checked)."""
    import pyarrow.parquet as pq

    predictions, valid = pq.ParquetFile(part.file(PREDICTIONS)), pq.ParquetFile(part.file(VALID))
    if predictions.num_row_groups != valid.num_row_groups:
        raise RuntimeError(f"{part.path}: {PREDICTIONS} and {VALID} do not hold the same chunks")
    for group in range(predictions.num_row_groups):
        predicted = predictions.read_row_group(group).to_pandas()
        rows = valid.read_row_group(group).to_pandas()
        if not predicted[EXAMPLE_ID].equals(rows[EXAMPLE_ID]):
            raise RuntimeError(f"{part.path}: {PREDICTIONS} and {VALID} disagree in row group {group}")
        yield predicted, rows


def _reject_rows(repeated, rows, schema: Schema):
    """The rows as rejects.csv holds them: file, row, reason, the id and the values as scored."""
    frame = rows.drop(columns=[EXAMPLE_ID]).assign(
        **{
            SOURCE_FILE: repeated[SOURCE_FILE],
            SOURCE_ROW: repeated[SOURCE_ROW],
            REASON: f"{EXAMPLE_ID}: expected {REPEATED_ID}",
        }
    )
    if schema.id_column and schema.id_column not in frame.columns:
        frame[schema.id_column] = repeated[EXAMPLE_ID]
    return frame


def _append_rejects(part: NightScores, out: NightScores) -> None:
    """The shard's rejected rows after those already in the night's rejects.csv (same columns)."""
    with open(part.rejects_path, "rb") as source, open(out.rejects_path, "ab") as target:
        source.readline()  # the header, written once for the night by its sink
        shutil.copyfileobj(source, target)


def _gather_quarantine(parts: Sequence[NightScores], out: NightScores) -> None:
    """Every shard's quarantined files (linked where the file system allows) and their reasons."""
    for part in parts:
        folder = part.path / QUARANTINE
        if folder.is_dir():
            (out.path / QUARANTINE).mkdir(exist_ok=True)
            for file in sorted(folder.iterdir()):
                target = free_name(out.path / QUARANTINE, file.name)
                try:
                    os.link(file, target)
                except OSError:
                    shutil.copy2(file, target)
        reasons = part.path / QUARANTINE_REASONS
        if reasons.is_file():
            night = out.path / QUARANTINE_REASONS
            header = not night.exists()  # one header for the night
            with open(reasons, "rb") as source, open(night, "ab") as target:
                if not header:
                    source.readline()
                shutil.copyfileobj(source, target)
