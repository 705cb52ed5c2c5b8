"""Raw stage: find the data set's files, fingerprint them, read them into one table."""
from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from pipeline.errors import DataError
from pipeline.schema import (IMAGE_EXTENSIONS, IMAGE_ID_COLUMN, IMAGE_PATH_COLUMN, SOURCE_COLUMNS, SOURCE_FILE,
                             SOURCE_PROBLEM, SOURCE_ROW)

logger = logging.getLogger(__name__)

TABLE_EXTENSIONS = (".csv", ".parquet", ".pq")
# Cell text that means "no value", compared after surrounding whitespace is stripped: pandas'
# default list, applied here so that " NaN " and "NaN" mean the same thing in every reader.
MISSING_TEXT = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                          "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
# Delimiters a supplier may use instead of the comma; only the header line decides (see _csv_header).
OTHER_DELIMITERS = (";", "\t", "|")
# What a file named .csv may really be: said in the error instead of a parser's confusion.
_MAGIC = {b"\x1f\x8b": "gzip-compressed: decompress it first (gunzip)",
          b"PK\x03\x04": "a ZIP archive (an Excel workbook?): export it as CSV"}
# A number written with a decimal comma, optionally with dots between thousands: 3,5 and 1.234,5.
DECIMAL_COMMA = r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+"
UNNAMED = "Unnamed: "  # a column without a name in the header, numbered from 0 as pandas does
CHECK_BLOCK = 1 << 20  # bytes read at a time when checking a CSV file's encoding
WHOLE_FILE_ROWS = 1_000_000  # rows per pandas chunk when a whole file is read
MAX_FIELD_CHARACTERS = 1 << 30  # the csv module's limit on one value (its default is 128 KiB)


def data_files(path: str | Path) -> list[Path]:
    """The files that make up a data set: one file, or every table or image under a folder.

    Raises:
        DataError: the path does not exist or holds no table or image files.
    """
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{root}: no such file or folder")
    wanted = TABLE_EXTENSIONS + IMAGE_EXTENSIONS
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise DataError(f"{root}: no {', '.join(wanted)} files")
    return files


def is_image_folder(path: str | Path) -> bool:
    return Path(path).is_dir() and all(f.suffix.lower() in IMAGE_EXTENSIONS for f in data_files(path))


def fingerprint(path: str | Path, cache_file: str | Path) -> str:
    """A hash of the data set's file names and contents.

    File hashes are cached by (size, modification time), so an unchanged data set is not reread:
    a nightly check of gigabytes costs one stat per file.
    """
    root = Path(path)
    cache_path = Path(cache_file)
    cache = _load_cache(cache_path)
    digest = hashlib.sha256()
    changed = False
    for file in data_files(root):
        stat = file.stat()
        key = str(file.resolve())
        entry = cache.get(key)
        if entry is None or entry[:2] != [stat.st_size, stat.st_mtime_ns]:
            entry = [stat.st_size, stat.st_mtime_ns, file_sha256(file)]
            cache[key] = entry
            changed = True
        name = file.name if root.is_file() else file.relative_to(root).as_posix()
        digest.update(f"{name}\t{entry[2]}\n".encode())
    if changed:
        _save_cache(cache_path, cache)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _load_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _save_cache(path: Path, cache: dict) -> None:
    # Written beside, then renamed: a killed run leaves the old cache, never half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(cache))
    os.replace(temporary, path)


def read_raw(path: str | Path, label: str) -> pd.DataFrame:
    """One table of examples, with the source file and row of each.

    An image folder (one sub-folder per class) becomes a table of image paths, labels and ids
    (the file name without extension). Table files are read as text: the validation stage types
    the columns, so that a stray word in a numeric column is a rejected row, not a lost column.
    Files without rows (0 bytes, header only) add nothing; all of them being so is an error.

    Raises:
        DataError: no rows at all, a file that cannot be read (naming it, and the line where
            that helps), or files of one data set whose columns differ.
    """
    if is_image_folder(path):
        return read_image_folder(path, label)
    # Images beside a table are the table's image column, not tables themselves.
    files = [file for file in data_files(path) if file.suffix.lower() in TABLE_EXTENSIONS]
    tables = [read_table_file(file) for file in files]
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


def read_table_file(file: Path) -> pd.DataFrame:
    """One CSV or Parquet file whole; without rows, attrs["problem"] says why."""
    chunks = list(_table_chunks(file, chunk_rows=None))
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
            raise DataError(f"{table.attrs['source']}: missing label column {label!r}; "
                            f"the file has {', '.join(map(repr, present)) or 'no columns'}")
    shapes = [frozenset(table.columns) - {SOURCE_PROBLEM} for table in tables]
    usual = max(shapes, key=shapes.count)  # the columns most files have (the first on a tie)
    reference = tables[shapes.index(usual)].attrs["source"]
    for table, shape in zip(tables, shapes):
        if shape != usual:
            missing, extra = sorted(usual - shape), sorted(shape - usual)
            what = "; ".join(part for part in (f"missing {', '.join(map(repr, missing))}" if missing else "",
                                               f"extra {', '.join(map(repr, extra))}" if extra else "") if part)
            raise DataError(f"{table.attrs['source']}: columns differ from {reference}: {what}")


def _without_blank_unnamed_columns(table: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    # A delimiter at the end of every line makes a nameless, empty column: an artefact, not a
    # feature (at night a file without it would then miss a column).
    blank = [column for column in table.columns
             if str(column).startswith(UNNAMED) and column not in SOURCE_COLUMNS and table[column].isna().all()]
    if blank:
        logger.warning("%s: ignoring %s: no name and no values (a delimiter at the end of each line?)",
                       path, ", ".join(map(repr, blank)))
    return table.drop(columns=blank)


def read_image_folder(path: str | Path, label: str) -> pd.DataFrame:
    root = Path(path)
    files = data_files(root)
    stems = [file.stem for file in files]
    # Ids must be unique: fall back to the path below the root when two classes share a stem.
    unique = len(set(stems)) == len(stems)
    return pd.DataFrame({
        IMAGE_PATH_COLUMN: [str(file) for file in files],
        label: [file.parent.name if file.parent != root else None for file in files],
        IMAGE_ID_COLUMN: stems if unique else [file.relative_to(root).with_suffix("").as_posix() for file in files],
        SOURCE_FILE: [str(file) for file in files],
        SOURCE_ROW: 1,
    })


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def batch_files(folder: str | Path) -> list[Path]:
    """A nightly folder's files, sub-folders included; a missing or empty folder is an empty night.

    Raises:
        DataError: the folder holds files this pipeline cannot read (a .gz, a spreadsheet): they
            would otherwise be skipped without a word.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    unreadable = [p for p in files if p.suffix.lower() not in TABLE_EXTENSIONS + IMAGE_EXTENSIONS]
    if unreadable:
        names = ", ".join(str(p.relative_to(folder)) for p in unreadable[:5])
        raise DataError(f"{folder}: cannot read {names}{' ...' if len(unreadable) > 5 else ''}; "
                        f"expected {', '.join(TABLE_EXTENSIONS + IMAGE_EXTENSIONS)} files")
    return files


def iter_batch(folder: str | Path, *, image_column: str | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A nightly batch in chunks of at most chunk_rows rows, so memory stays flat.

    For an image data set the folder is flat and each file name (without extension) is the
    example id; otherwise it holds table files in the training format, without the label. A file
    without rows (0 bytes, header only) comes as one empty chunk whose attrs["problem"] says so;
    a header-only file keeps its columns, which must still be checked.

    Raises:
        DataError: a file cannot be read; it names the file and, where it helps, the line.
    """
    files = batch_files(folder)
    if image_column:
        images = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
        for start in range(0, len(images), chunk_rows):
            part = images[start:start + chunk_rows]
            yield pd.DataFrame({image_column: [str(f) for f in part], IMAGE_ID_COLUMN: [f.stem for f in part],
                                SOURCE_FILE: [str(f) for f in part], SOURCE_ROW: 1})
        return
    for file in (f for f in files if f.suffix.lower() in TABLE_EXTENSIONS):
        yield from _table_chunks(file, chunk_rows)


def _table_chunks(file: Path, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """A table file in chunks (None: one), each with its source file and rows; attrs name the file."""
    if file.stat().st_size == 0:
        yield _no_rows(pd.DataFrame(), file, _unreadable(file, "empty file (0 bytes)"))
        return
    reader = _csv_chunks if file.suffix.lower() == ".csv" else _parquet_chunks
    first_row, yielded = 1, False
    for chunk in reader(file, chunk_rows or WHOLE_FILE_ROWS):
        if yielded and not len(chunk):
            continue  # an empty chunk only stands for a file without rows
        yielded = True
        chunk = chunk.reset_index(drop=True)
        chunk.insert(len(chunk.columns), SOURCE_FILE, str(file))
        chunk.insert(len(chunk.columns), SOURCE_ROW, range(first_row, first_row + len(chunk)))
        if SOURCE_PROBLEM in chunk.columns:
            chunk[SOURCE_PROBLEM] = chunk.pop(SOURCE_PROBLEM)  # the source columns last, together
        first_row += len(chunk)
        chunk.attrs["source"] = str(file)  # names the file even when the chunk has no rows
        if len(chunk):
            yield chunk
        else:
            named = chunk.columns.difference(SOURCE_COLUMNS).size
            header = " (header only)" if reader is _csv_chunks else ""
            yield _no_rows(chunk, file, f"no rows{header}" if named else "no header, no rows")


def _no_rows(frame: pd.DataFrame, file: Path, problem: str) -> pd.DataFrame:
    frame = frame.assign(**{SOURCE_FILE: pd.Series(dtype=object), SOURCE_ROW: pd.Series(dtype="int64")})
    frame.attrs.update(source=str(file), problem=problem)
    return frame


def _unreadable(file: Path, why: str) -> str:
    return f"cannot be read as {file.suffix.lstrip('.').upper()}: {why}"


def _cannot_read(file: Path, why: str) -> DataError:
    return DataError(f"{file}: {_unreadable(file, why)}")


# --- CSV ---------------------------------------------------------------------------------------

def _csv_chunks(file: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Text chunks, whitespace stripped and missing values marked (see _clean_text)."""
    _check_text(file)
    delimiter, header = _csv_header(file)
    for chunk in _csv_text_chunks(file, delimiter, header, chunk_rows):
        chunk = _clean_text(chunk)
        yield _decimal_commas(chunk) if delimiter == ";" else chunk


def _csv_text_chunks(file: Path, delimiter: str, header: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """pandas' fast reader first, and the csv module from the row where it stopped.

    The fast reader stops the whole file at a ragged row (more fields than the header); the slow
    one keeps that row as a reject and every other row as it is.
    """
    if not header:
        yield pd.DataFrame()  # blank lines only
        return
    rows_read, chunks_read, ragged = 0, 0, False
    options = dict(sep=delimiter, header=0, names=header, dtype=str, keep_default_na=False, na_filter=False,
                   index_col=False, encoding="utf-8-sig", chunksize=chunk_rows)
    try:
        with pd.read_csv(file, **options) as chunks:
            while (chunk := _next_strictly(chunks)) is not None:
                rows_read, chunks_read = rows_read + len(chunk), chunks_read + 1
                yield chunk
    except (pd.errors.ParserError, pd.errors.ParserWarning):
        ragged = True
    except (pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as error:
        raise _cannot_read(file, _first_line(error)) from None
    if ragged:
        yield from _csv_module_chunks(file, delimiter, header, chunk_rows, skip=rows_read)
    elif not chunks_read:
        yield pd.DataFrame(columns=header)  # header only: its columns must still be checked


def _next_strictly(chunks) -> pd.DataFrame | None:
    # With index_col=False pandas drops the extra fields of a long first row with only a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return next(chunks, None)


def _check_text(file: Path) -> None:
    """UTF-8 text without NUL bytes, checked in blocks (memory stays flat) before pandas reads it.

    pandas would report a bad byte by its offset in its own buffer, and read NUL bytes (a file
    zero-filled by a crash) as text; this names the byte offset and line in the file.
    """
    with open(file, "rb") as handle:
        start = handle.read(len(max(_MAGIC, key=len)))
        for magic, what in _MAGIC.items():
            if start.startswith(magic):
                raise _cannot_read(file, f"it is {what}")
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset, line = 0, 1
        while block := handle.read(CHECK_BLOCK):
            nul = block.find(b"\0")
            if nul >= 0:
                where = line + block.count(b"\n", 0, nul)
                raise _cannot_read(file, f"binary data: a NUL byte at byte {offset + nul} (line {where})")
            pending = len(decoder.getstate()[0])  # bytes of a character split between blocks
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                at = max(0, error.start - pending)
                where = line + block.count(b"\n", 0, at)
                raise _cannot_read(file, f"not UTF-8 text: byte 0x{error.object[error.start]:02x} at byte "
                                         f"{offset + at} (line {where}) cannot be decoded; save the file as "
                                         "UTF-8 (it may be latin-1 or cp1252)") from None
            offset, line = offset + len(block), line + block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise _cannot_read(file, f"not UTF-8 text: the file ends inside a character (line {line})") from None


def _csv_header(file: Path) -> tuple[str, list[str]]:
    """The delimiter and the header's column names (stripped; a blank one named like pandas does).

    A header that reads as one column holding ';', tabs or '|' is that delimiter's file: it is
    read with it, with a warning. Only the header decides, so a comma file is never re-split.

    Raises:
        DataError: a column name appears twice (pandas would rename the second 'name.1').
    """
    delimiter = ","
    names = _first_record(file, delimiter)
    if len(names) == 1 and any(other in names[0] for other in OTHER_DELIMITERS):
        delimiter = max(OTHER_DELIMITERS, key=names[0].count)
        names = _first_record(file, delimiter)
        logger.warning("%s: read with the delimiter %r: its header has no commas", file, delimiter)
    names = [name.strip() or f"{UNNAMED}{position}" for position, name in enumerate(names)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        where = "; ".join(f"{name!r} at columns {', '.join(str(i + 1) for i, n in enumerate(names) if n == name)}"
                          for name in repeated)
        raise DataError(f"{file}: duplicate column names in the header: {where}; rename them")
    return delimiter, names


def _first_record(file: Path, delimiter: str) -> list[str]:
    with open(file, newline="", encoding="utf-8-sig") as handle:
        try:
            return next((record for record in csv.reader(handle, delimiter=delimiter) if not _blank(record)), [])
        except csv.Error as error:
            raise _cannot_read(file, f"header: {error}") from None


def _blank(record: list[str]) -> bool:
    # pandas skips lines that hold nothing but spaces; they are not rows.
    return not record or (len(record) == 1 and not record[0].strip())


def _csv_module_chunks(file: Path, delimiter: str, header: list[str], chunk_rows: int,
                       skip: int) -> Iterator[pd.DataFrame]:
    """The slow reader: a row with too many fields becomes a reject naming its line, not an error.

    skip: rows the fast reader already delivered. A row with too few fields ends in missing values.
    """
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARACTERS))  # a megabyte-long text is a value
    width, rows, problems = len(header), [], []
    with open(file, newline="", encoding="utf-8-sig") as handle:
        records = _records(file, csv.reader(handle, delimiter=delimiter, strict=True))
        next(records, None)  # the header
        for row, (line, record) in enumerate(records, start=1):
            if row <= skip:
                continue
            problems.append(_too_many_fields(record, width, line) if len(record) > width else None)
            rows.append(record[:width] + [""] * (width - len(record)))
            if len(rows) == chunk_rows:
                yield _csv_frame(rows, problems, header)
                rows, problems = [], []
    if rows or not skip:
        yield _csv_frame(rows, problems, header)


def _records(file: Path, reader) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of every record that is not blank; a broken one names its first line."""
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader, None)
        except csv.Error as error:
            raise _cannot_read(file, f"line {line}: {error}") from None
        if record is None:
            return
        if not _blank(record):
            yield line, record


def _too_many_fields(record: list[str], width: int, line: int) -> str:
    extra = ", ".join(repr(value[:40]) for value in record[width:][:3])
    return f"line {line}: {len(record)} fields, the header has {width} (extra: {extra})"


def _csv_frame(rows: list[list[str]], problems: list[str | None], header: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    if any(problems):
        frame[SOURCE_PROBLEM] = problems
    return frame


def _clean_text(frame: pd.DataFrame, columns=None) -> pd.DataFrame:
    """Surrounding whitespace stripped and MISSING_TEXT as missing: " red" is red, " NaN" missing."""
    for column in [c for c in frame.columns if c not in SOURCE_COLUMNS] if columns is None else columns:
        stripped = frame[column].str.strip()
        frame[column] = stripped.mask(stripped.isin(MISSING_TEXT))
    return frame


def _decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """3,5 as 3.5 and 1.234,5 as 1234.5: a file is ;-separated because its comma is the decimal mark.

    1.234 stays as written (it may be a decimal point): only values with a comma are changed.
    """
    for column in [c for c in frame.columns if c not in SOURCE_COLUMNS]:
        values = frame[column]
        european = values.str.fullmatch(DECIMAL_COMMA).fillna(False).astype(bool)
        if european.any():
            dotted = values.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
            frame[column] = values.where(~european, dotted)
    return frame


# --- Parquet -----------------------------------------------------------------------------------

def _parquet_chunks(file: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Typed chunks, as written; text columns cleaned like CSV text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
        names = parquet.schema_arrow.names
        batches = parquet.iter_batches(batch_size=chunk_rows)
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise _cannot_read(file, f"duplicate column names {', '.join(map(repr, repeated))}")
        empty = True
        for batch in batches:
            empty = False
            yield _clean_parquet_text(batch.to_pandas())
        if empty:
            yield parquet.schema_arrow.empty_table().to_pandas()
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _cannot_read(file, _first_line(error)) from None


def _clean_parquet_text(frame: pd.DataFrame) -> pd.DataFrame:
    text = [column for column in frame.columns
            if pd.api.types.infer_dtype(frame[column], skipna=True) == "string"]
    return _clean_text(frame, text)


def feedback_examples(incoming_root: str | Path, labels: pd.DataFrame, *, label: str, id_column: str,
                      image_column: str | None, chunk_rows: int = 50_000) -> pd.DataFrame:
    """Nightly examples that have a late label, as training rows (raw, untyped, like read_raw).

    Args:
        incoming_root: the folder of nightly folders (`<data_root>/incoming`).
        labels: example_id and label, from the feedback table.
        id_column: the column holding example ids in the nightly files (image data: the file name).
        image_column: the image column for an image data set, else None.
    """
    if not image_column and not id_column:
        raise DataError("[dataset] include_feedback needs [dataset] id_column for a table: late labels "
                        "name their examples by id")
    by_id = dict(zip(labels["example_id"].astype(str), labels["label"]))
    found = []
    for night in sorted(p for p in Path(incoming_root).iterdir() if p.is_dir()) if Path(incoming_root).is_dir() else []:
        for chunk in iter_batch(night, image_column=image_column, chunk_rows=chunk_rows):
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


def read_feedback(files: list[Path], *, id_column: str, label: str) -> pd.DataFrame:
    """Late-label CSVs as one table: example_id, label, source (the file).

    The id column is the data set's `id_column`, or `image_id` for image folders; `example_id`
    is always accepted too, so a labeled export of the labeling queue can come straight back.

    Files are read like the raw data (encoding, delimiter, missing values); one without rows adds
    nothing. A label the model never saw is kept as it came: it counts as a wrong prediction in
    prediction_quality_daily and becomes a class when feedback joins the training data.

    Raises:
        DataError: a file cannot be read, or has no id column or no label column.
    """
    frames = []
    for file in files:
        table = read_table_file(file)
        if not len(table):
            logger.warning("%s: %s; no labels in it", file, table.attrs.get("problem", "no rows"))
            continue
        candidates = [c for c in (id_column, IMAGE_ID_COLUMN, "example_id") if c]
        present = [column for column in candidates if column in table.columns]
        if not present or label not in table.columns:
            present = [column for column in table.columns if column not in SOURCE_COLUMNS]
            raise DataError(f"{file}: expected an id column ({' or '.join(map(repr, candidates))}) and the label "
                            f"column {label!r}; the file has {', '.join(map(repr, present))}")
        frames.append(pd.DataFrame({"example_id": table[present[0]], "label": table[label], "source": str(file)}))
    if not frames:
        return pd.DataFrame({"example_id": [], "label": [], "source": []}, dtype=object)
    return pd.concat(frames, ignore_index=True)
