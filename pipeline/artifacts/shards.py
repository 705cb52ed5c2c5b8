"""A night scored in shards, merged into one night's scores: what LogPredictions loads and
MonitorDrift reads are the same files whether the night was scored in one task or in several.

Each shard scored its own files (pipeline/stages/data_files.py's shard_files), so an id that a
supplier repeated across files of two shards reached two shards' predictions. Shards are merged
in order, and a row whose id an earlier shard scored is moved to the rejects with the reason an
unsharded night gives it: the first row of an id is kept, sharded or not. (Its line in
rejects.csv holds the values as validated, 7.0 for a 7, where a night scored whole keeps the
text as read.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence

from pipeline.artifacts.prediction import (
    PREDICTIONS,
    QUARANTINE,
    QUARANTINE_REASONS,
    VALID,
    NightScores,
    free_name,
    reject_columns,
)
from pipeline.common.columns import EXAMPLE_ID, REASON, SOURCE_FILE, SOURCE_ROW
from pipeline.stages.contract import Schema
from pipeline.stages.prediction import REPEATED_ID, BatchSummary, repeated_id_problems

COUNTS = ("rows_in", "rows_rejected", "rows_scored", "rows_duplicate_id")


def merge_shards(
    parts: Sequence[NightScores], out: NightScores, schema: Schema, progress: Callable[[int], None] | None = None
) -> dict:
    """Write the night's scores into `out` from its shards' scores, in shard order.

    Arrow tables from file to file, a row group at a time: no row passes through pandas unless
    it is rejected, so merging costs a fraction of scoring.

    Returns:
        The night's BatchSummary.as_dict(): counts, status, problems and quarantined files.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    summaries = [part.summary() for part in parts]
    merged = {count: sum(int(summary.get(count, 0)) for summary in summaries) for count in COUNTS}
    problems: list[str] = []  # each shard's, then the ids it repeated from earlier shards
    _start_rejects(parts[0], out)
    earlier: list = []  # the ids earlier shards scored, an Arrow array per shard
    with (
        pq.ParquetWriter(out.file(PREDICTIONS), pq.read_schema(parts[0].file(PREDICTIONS))) as predictions,
        pq.ParquetWriter(out.file(VALID), pq.read_schema(parts[0].file(VALID))) as valid_rows,
    ):
        for part, summary in zip(parts, summaries):
            problems += summary.get("problems", [])
            ids = pq.read_table(part.file(PREDICTIONS), columns=[EXAMPLE_ID])[EXAMPLE_ID].combine_chunks()
            again, offset = _scored_earlier(ids, earlier), 0
            for predicted, valid in _row_groups(part):
                repeated = again.slice(offset, predicted.num_rows)
                offset += predicted.num_rows
                if repeated.true_count:
                    rejected = _reject(predicted.filter(repeated), valid.filter(repeated), out, schema)
                    problems += repeated_id_problems(rejected)
                    for count, change in (("rows_rejected", 1), ("rows_scored", -1), ("rows_duplicate_id", 1)):
                        merged[count] += change * len(rejected)
                    kept = pc.invert(repeated)
                    predicted, valid = predicted.filter(kept), valid.filter(kept)
                predictions.write_table(predicted)
                valid_rows.write_table(valid)
            earlier.append(ids)
            _append_rejects(part, out)
            if progress:
                progress(sum(len(before) for before in earlier))
    # In the order of a night scored whole: by file, whichever shard met it (the first has the
    # entries no shard reads).
    quarantined = sorted((e for summary in summaries for e in summary.get("quarantined", [])), key=_by_file)
    skipped = sorted((e for summary in summaries for e in summary.get("skipped", [])), key=_by_file)
    _gather_quarantine(parts, out)
    night = BatchSummary(**merged, problems=list(dict.fromkeys(problems)), quarantined=quarantined, skipped=skipped)
    return night.as_dict()  # the status and the problems kept, as for a night scored whole


def _scored_earlier(ids, earlier: list):
    """Per id of this shard, whether an earlier shard scored it: exact, by Arrow's hash set."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not earlier:
        return pa.repeat(pa.scalar(False), len(ids))
    return pc.is_in(ids, value_set=pa.concat_arrays(earlier))


def _row_groups(part: NightScores):
    """(predictions, valid rows) as Arrow tables, a row group at a time: the two files were
    written chunk by chunk together, so their row groups hold the same rows (checked)."""
    import pyarrow.parquet as pq

    predictions, valid = pq.ParquetFile(part.file(PREDICTIONS)), pq.ParquetFile(part.file(VALID))
    if predictions.num_row_groups != valid.num_row_groups:
        raise RuntimeError(f"{part.path}: {PREDICTIONS} and {VALID} do not hold the same chunks")
    for group in range(predictions.num_row_groups):
        predicted, rows = predictions.read_row_group(group), valid.read_row_group(group)
        if not predicted[EXAMPLE_ID].equals(rows[EXAMPLE_ID]):
            raise RuntimeError(f"{part.path}: {PREDICTIONS} and {VALID} disagree in row group {group}")
        yield predicted, rows


def _reject(predicted, valid, out: NightScores, schema: Schema):
    """Append the rows to the night's rejects.csv as a night scored whole writes them (file, row,
    reason, id, the values as scored); returns their predictions (file, row and id) as pandas."""
    repeated, rows = predicted.to_pandas(), valid.to_pandas()
    reason = f"{EXAMPLE_ID}: expected {REPEATED_ID}"
    frame = rows.drop(columns=[EXAMPLE_ID])
    frame = frame.assign(**{SOURCE_FILE: repeated[SOURCE_FILE], SOURCE_ROW: repeated[SOURCE_ROW], REASON: reason})
    if schema.id_column and schema.id_column not in frame.columns:
        frame[schema.id_column] = repeated[EXAMPLE_ID]
    frame.reindex(columns=reject_columns(schema)).to_csv(out.rejects_path, mode="a", header=False, index=False)
    return repeated


def _start_rejects(first: NightScores, out: NightScores) -> None:
    """The night's rejects.csv with the shards' header (one schema, one header)."""
    with open(first.rejects_path, "rb") as source, open(out.rejects_path, "wb") as target:
        target.write(source.readline())


def _append_rejects(part: NightScores, out: NightScores) -> None:
    """The shard's rejected rows after those already in the night's rejects.csv (same columns)."""
    with open(part.rejects_path, "rb") as source, open(out.rejects_path, "ab") as target:
        source.readline()  # the header, once for the night (_start_rejects)
        shutil.copyfileobj(source, target)


def _by_file(entry: dict) -> str:
    return entry["file"]


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
