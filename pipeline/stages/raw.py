"""Raw stage: find the data set's files and read them into one table.

pipeline/stages/table_reading.py reads one table file; pipeline/stages/fingerprint.py hashes the files.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.common.columns import (
    ANNOTATOR,
    IMAGE_GROUP_COLUMN,
    IMAGE_ID_COLUMN,
    IMAGE_PATH_COLUMN,
    SOURCE_COLUMNS,
    SOURCE_FILE,
    SOURCE_PROBLEM,
    SOURCE_ROW,
)
from pipeline.errors import DataError
from pipeline.stages.data_files import (
    IMAGE_EXTENSIONS,
    TABLE_EXTENSIONS,
    batch_files,  # noqa: F401 - raw.batch_files is the tasks' name for it
    data_files,
    is_image_folder,
    list_folder,
    night_listing,
)
from pipeline.stages.table_reading import UNNAMED, table_chunks

logger = logging.getLogger(__name__)


def read_raw(
    path: str | Path, label: str, *, missing_values: tuple[str, ...] = (), group_pattern: str = ""
) -> pd.DataFrame:
    """One table of examples, with the source file and row of each.

    An image folder (one sub-folder per class) becomes a table of image paths, labels and ids
    (the file name without extension). Table files are read as text: the validation stage types
    the columns, so that a stray word in a numeric column is a rejected row, not a lost column.
    Files without rows (0 bytes, header only) add nothing; all of them being so is an error.

    missing_values: cell texts that mean "no value" besides the usual ones.
    group_pattern: an image folder's groups (read_image_folder); a table has a group column.

    Raises:
        DataError: no rows at all, a file that cannot be read (naming it, and the line where
            that helps), or files of one data set whose columns differ.
    """
    if is_image_folder(path):
        return read_image_folder(path, label, group_pattern=group_pattern)
    if group_pattern:
        raise DataError(f"{path}: [dataset] group_pattern groups an image folder's files; a table has group_column")
    # Images beside a table are the table's image column, not tables themselves.
    files = [file for file in data_files(path) if file.suffix.lower() in TABLE_EXTENSIONS]
    tables = [read_table_file(file, missing_values) for file in files]
    with_rows = [table for table in tables if len(table)]
    if not with_rows:
        why = "; ".join(f"{table.attrs['source']}: {table.attrs['problem']}" for table in tables)
        raise DataError(why if len(tables) == 1 else f"{path}: no rows in any file ({why})")
    for table in tables:
        if not len(table):
            logger.warning("%s: %s; it adds nothing", table.attrs["source"], table.attrs["problem"])
    if len(with_rows) > 1:
        _require_same_columns(with_rows, label)  # a single file's missing column is validation's to name
    table = pd.concat(with_rows, ignore_index=True) if len(with_rows) > 1 else with_rows[0]
    return _without_blank_unnamed_columns(table, path)


def read_table_file(file: Path, missing_values: tuple[str, ...] = ()) -> pd.DataFrame:
    """One CSV or Parquet file whole; without rows, attrs["problem"] says why."""
    chunks = list(table_chunks(file, None, missing_values))
    if len(chunks) == 1:
        return chunks[0]
    table = pd.concat(chunks, ignore_index=True)
    table.attrs["source"] = str(file)
    return table


def _require_same_columns(tables: list[pd.DataFrame], label: str) -> None:
    """The files of one data set must agree: concatenating would fill the gaps with missing values,
    and a file without the label would be a pile of rejected rows instead of one clear error."""
    for table in tables:
        if label not in table.columns:
            present = [c for c in table.columns if c not in SOURCE_COLUMNS]
            raise DataError(
                f"{table.attrs['source']}: missing label column {label!r}; "
                f"it has {', '.join(map(repr, present)) or 'no columns'}"
            )
    shapes = [frozenset(table.columns) - {SOURCE_PROBLEM} for table in tables]
    usual = max(shapes, key=shapes.count)  # the columns most files have (the first on a tie)
    reference = tables[shapes.index(usual)].attrs["source"]
    for table, shape in zip(tables, shapes):
        if shape != usual:
            missing, extra = sorted(usual - shape), sorted(shape - usual)
            what = "; ".join(
                part
                for part in (
                    f"missing {', '.join(map(repr, missing))}" if missing else "",
                    f"extra {', '.join(map(repr, extra))}" if extra else "",
                )
                if part
            )
            raise DataError(f"{table.attrs['source']}: columns differ from {reference}: {what}")


def _without_blank_unnamed_columns(table: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    # A delimiter at the end of every line makes a nameless, empty column: an artefact, not a
    # feature (at night a file without it would then miss a column).
    blank = [
        column
        for column in table.columns
        if str(column).startswith(UNNAMED) and column not in SOURCE_COLUMNS and table[column].isna().all()
    ]
    if blank:
        logger.warning(
            "%s: ignoring %s: no name and no values (a delimiter at the end of each line?)",
            path,
            ", ".join(map(repr, blank)),
        )
    _require_named_values(table.drop(columns=blank))
    return table.drop(columns=blank)


def _require_named_values(table: pd.DataFrame) -> None:
    """A column with values but no name cannot be a feature a person would recognise, nor be
    matched at night (it is often the row index a spreadsheet or pandas wrote): one line naming
    the file and the column's position."""
    for column in table.columns:
        name = str(column)
        if name.startswith(UNNAMED) and name[len(UNNAMED) :].isdigit() and column not in SOURCE_COLUMNS:
            holding = table[SOURCE_FILE][table[column].notna()]
            raise DataError(
                f"{holding.iloc[0]}: column {int(name[len(UNNAMED) :]) + 1} has no name in the header but holds "
                f"values (a row index a spreadsheet or pandas wrote?); name it, or drop it"
            )


def read_image_folder(path: str | Path, label: str, *, group_pattern: str = "") -> pd.DataFrame:
    """One row per image: path, label (its sub-folder), id and, with a group_pattern, its group."""
    root = Path(path)
    files = data_files(root)
    stems = [file.stem for file in files]
    # Ids must be unique: fall back to the path below the root when two classes share a stem.
    unique = len(set(stems)) == len(stems)
    table = pd.DataFrame(
        {
            IMAGE_PATH_COLUMN: [str(file) for file in files],
            label: [file.parent.name if file.parent != root else None for file in files],
            IMAGE_ID_COLUMN: stems if unique else [file.relative_to(root).with_suffix("").as_posix() for file in files],
            SOURCE_FILE: [str(file) for file in files],
            SOURCE_ROW: 1,
        }
    )
    if group_pattern:
        table.insert(2, IMAGE_GROUP_COLUMN, image_groups(files, group_pattern, root))
    return table


def image_groups(files: list[Path], pattern: str, root: Path) -> list[str]:
    """Each file's group: the pattern's first group (or whole match) searched in its file name.

    `^(.+)_\\d+px` puts cat_32px.png and cat_64px.png in the group "cat".

    Raises:
        DataError: the pattern is no regular expression, or file names it does not match.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise DataError(f"[dataset] group_pattern {pattern!r} is no regular expression: {error}") from None
    matches = [compiled.search(file.name) for file in files]
    unmatched = [file.relative_to(root).as_posix() for file, match in zip(files, matches) if match is None]
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (f" (+{len(unmatched) - 5} more)" if len(unmatched) > 5 else "")
        raise DataError(
            f"{root}: [dataset] group_pattern {pattern!r} matches no group in {len(unmatched)} of "
            f"{len(files)} file names: {shown}"
        )
    return [match.group(1) if compiled.groups else match.group(0) for match in matches]


@dataclass(frozen=True)
class BatchSource:
    """One readable unit of a night: a table file, or a flat folder's images (each a row)."""

    name: str  # the file (or the folder of images), for messages and quarantine
    chunks: Callable[[], Iterator[pd.DataFrame]]  # reads it, chunk by chunk, when called
    file: Path | None = None  # the file itself; None for a folder of images
    refused: str = ""  # why the file may not be read at all (a link out of the night folder): never opened
    skipped: str = ""  # why the entry is left out of the night (a hidden file, a table in an image night)


def _no_chunks() -> Iterator[pd.DataFrame]:
    return iter(())


def batch_sources(
    folder: str | Path,
    *,
    image_column: str | None,
    chunk_rows: int,
    missing_values: tuple[str, ...] = (),
    files: list[Path] | None = None,
    every_entry: bool = False,
) -> list[BatchSource]:
    """A nightly batch as its files, each read in chunks of at most chunk_rows rows when asked.

    For an image data set the folder is flat and each file name (without extension) is the
    example id: one source of every image (an unreadable image is a rejected row, not a bad
    file). Otherwise one source per table file in the training format, without the label. A file
    without rows (0 bytes, header only) comes as one empty chunk whose attrs["problem"] says so;
    a header-only file keeps its columns, which must still be checked.

    files: those of the folder's files to read (a shard's: data_files.shard_files); by default
    every file of the folder (night_listing), with a source for each file refused unread (a link
    out of the night folder, a broken link, a FIFO: `refused`, quarantined by its reason alone) and
    each entry left out (a hidden file, a table in an image night: `skipped`, named in the night's
    record), so that nothing in the folder is passed over without a word. Of a night in shards,
    the shard with `every_entry` (the first) has the sources of the refused and skipped entries.

    Raises:
        DataError: the folder holds files this pipeline cannot read (night_listing).
    """
    folder = Path(folder)
    if files is None:
        listing = night_listing(folder)
        files, refused, skipped = listing.files, listing.refused, listing.skipped
    else:
        # A shard's files: checked again here, since the folder may have changed since the cut.
        listing = list_folder(folder, what="night folder")
        refusals = dict(listing.refused)
        refused, skipped = [(path, refusals[path]) for path in files if path in refusals], []
        if every_entry:  # the shard that speaks for the entries no shard reads
            refused += [(path, why) for path, why in listing.refused if path not in files]
            skipped = listing.skipped
        files = [path for path in files if path not in refusals]
    others = [BatchSource(str(path), _no_chunks, path, refused=why) for path, why in refused]
    others += [BatchSource(str(path), _no_chunks, path, skipped=why) for path, why in skipped]
    if image_column:
        images = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
        others += [
            BatchSource(
                str(f),
                _no_chunks,
                f,
                skipped=f"not an image in an image night (expected {', '.join(IMAGE_EXTENSIONS)})",
            )
            for f in files
            if f.suffix.lower() not in IMAGE_EXTENSIONS
        ]
        whole = [BatchSource(str(folder), lambda: _image_chunks(images, image_column, chunk_rows))] if images else []
        return whole + sorted(others, key=lambda source: source.name)
    tables = [f for f in files if f.suffix.lower() in TABLE_EXTENSIONS]
    sources = [
        BatchSource(str(file), functools.partial(table_chunks, file, chunk_rows, missing_values), file)
        for file in tables
    ]
    return sorted(sources + others, key=lambda source: source.name)


def iter_batch(
    folder: str | Path, *, image_column: str | None, chunk_rows: int, missing_values: tuple[str, ...] = ()
) -> Iterator[pd.DataFrame]:
    """Every chunk of every source of a nightly batch (batch_sources), in order.

    Raises:
        DataError: a file cannot be read; it names the file and, where it helps, the line.
    """
    for source in batch_sources(
        folder, image_column=image_column, chunk_rows=chunk_rows, missing_values=missing_values
    ):
        yield from source.chunks()


def count_rows(file: Path) -> int:
    """How many rows a file holds, at best a guess for one that cannot be read: its lines after the
    header for text, the footer's count for Parquet; 0 when even that fails."""
    try:
        if file.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.ParquetFile(file).metadata.num_rows
        with open(file, "rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        return max(0, lines - 1)
    except Exception:  # noqa: BLE001 - a count for a report, never a reason to fail
        return 0


def _image_chunks(images: list[Path], image_column: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(images), chunk_rows):
        part = images[start : start + chunk_rows]
        yield pd.DataFrame(
            {
                image_column: [str(f) for f in part],
                IMAGE_ID_COLUMN: [f.stem for f in part],
                SOURCE_FILE: [str(f) for f in part],
                SOURCE_ROW: 1,
            }
        )


def feedback_examples(
    incoming_root: str | Path,
    labels: pd.DataFrame,
    *,
    label: str,
    id_column: str,
    image_column: str | None,
    chunk_rows: int = 50_000,
    missing_values: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Nightly examples that have a late label, as training rows (raw, untyped, like read_raw).

    Args:
        incoming_root: the folder of nightly folders (`<data_root>/incoming`).
        labels: example_id and label, from the feedback table.
        id_column: the column holding example ids in the nightly files (image data: the file name).
        image_column: the image column for an image data set, else None.
    """
    if not image_column and not id_column:
        raise DataError(
            "[dataset] include_feedback needs [dataset] id_column for a table: late labels name their examples by id"
        )
    by_id = dict(zip(labels["example_id"].astype(str), labels["label"]))
    found = []
    for night in sorted(p for p in Path(incoming_root).iterdir() if p.is_dir()) if Path(incoming_root).is_dir() else []:
        for chunk in iter_batch(night, image_column=image_column, chunk_rows=chunk_rows, missing_values=missing_values):
            if (IMAGE_ID_COLUMN if image_column else id_column) not in chunk.columns:
                continue  # no rows, or a file without ids: nothing a late label can name
            ids = chunk[IMAGE_ID_COLUMN if image_column else id_column].astype(str)
            matched = chunk[ids.isin(by_id).to_numpy()].copy()
            matched[label] = ids[ids.isin(by_id)].map(by_id).to_numpy()
            found.append(matched)
    if not found:
        return pd.DataFrame()
    # The newest night wins when an example came in twice.
    table = pd.concat(found, ignore_index=True)
    key = IMAGE_ID_COLUMN if image_column else id_column
    return table.drop_duplicates(key, keep="last").reset_index(drop=True)


def read_feedback(
    files: list[Path],
    *,
    id_column: str,
    label: str,
    missing_values: tuple[str, ...] = (),
    annotator_column: str = ANNOTATOR,
    default_annotator: str = "unknown",
) -> pd.DataFrame:
    """Late-label CSVs as one table: example_id, label, annotator, source (the file).

    The id column is the data set's `id_column`, or `image_id` for image folders; `example_id`
    is always accepted too, so a labeled export of the labeling queue can come straight back.
    Who labeled a row is the file's `annotator_column`; a file without that column is all
    `default_annotator`'s (an empty cell in the column stays missing: the row is rejected).

    Files are read like the raw data (encoding, delimiter, missing values); one without rows adds
    nothing. A label the model never saw is kept as it came: it counts as a wrong prediction in
    prediction_quality_daily and becomes a class when feedback joins the training data.

    Raises:
        DataError: a file cannot be read, or has no id column or no label column.
    """
    frames = []
    for file in files:
        table = read_table_file(file, missing_values)
        if not len(table):
            logger.warning("%s: %s; no labels in it", file, table.attrs.get("problem", "no rows"))
            continue
        candidates = [c for c in (id_column, IMAGE_ID_COLUMN, "example_id") if c]
        present = [column for column in candidates if column in table.columns]
        if not present or label not in table.columns:
            present = [column for column in table.columns if column not in SOURCE_COLUMNS]
            raise DataError(
                f"{file}: expected an id column ({' or '.join(map(repr, candidates))}) and the label "
                f"column {label!r}; it has {', '.join(map(repr, present))}"
            )
        who = table[annotator_column] if annotator_column in table.columns else default_annotator
        frames.append(
            pd.DataFrame({"example_id": table[present[0]], "label": table[label], ANNOTATOR: who, "source": str(file)})
        )
    if not frames:
        return pd.DataFrame({"example_id": [], "label": [], ANNOTATOR: [], "source": []}, dtype=object)
    return pd.concat(frames, ignore_index=True)
