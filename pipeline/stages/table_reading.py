"""Strict readers of one CSV or Parquet file, in chunks: clear errors instead of a parser's
confusion, text cleaned the same way in every reader."""

from __future__ import annotations

import codecs
import csv
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from pipeline.common.columns import SOURCE_COLUMNS, SOURCE_FILE, SOURCE_PROBLEM, SOURCE_ROW, reserved_name
from pipeline.errors import DataError

logger = logging.getLogger(__name__)

# Cell text that means "no value", compared after surrounding whitespace is stripped: pandas'
# default list, applied here so that " NaN " and "NaN" mean the same thing in every reader.
MISSING_TEXT = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
# Delimiters a supplier may use instead of the comma; only the header line decides (see _csv_header).
OTHER_DELIMITERS = (";", "\t", "|")
# What a file named .csv may really be: said in the error instead of a parser's confusion.
_MAGIC = {
    b"\x1f\x8b": "gzip-compressed: decompress it first (gunzip)",
    b"PK\x03\x04": "a ZIP archive (an Excel workbook?): export it as CSV",
}
# A number written with a decimal comma, optionally with dots between thousands: 3,5 and 1.234,5.
DECIMAL_COMMA = r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+"
UNNAMED = "Unnamed: "  # a column without a name in the header, numbered from 0 as pandas does
CHECK_BLOCK = 1 << 20  # bytes read at a time when checking a CSV file's encoding
WHOLE_FILE_ROWS = 1_000_000  # rows per pandas chunk when a whole file is read
MAX_FIELD_CHARACTERS = 1 << 30  # the csv module's limit on one value (its default is 128 KiB)


def table_chunks(file: Path, chunk_rows: int | None, missing_values: tuple[str, ...] = ()) -> Iterator[pd.DataFrame]:
    """A table file in chunks (None: one), each with its source file and rows; attrs name the file.

    missing_values: cell texts that mean "no value" besides MISSING_TEXT (`[dataset] missing_values`).
    """
    if file.stat().st_size == 0:
        yield _no_rows(pd.DataFrame(), file, _unreadable(file, "empty file (0 bytes)"))
        return
    reader = _csv_chunks if file.suffix.lower() == ".csv" else _parquet_chunks
    first_row, yielded = 1, False
    missing = MISSING_TEXT.union(missing_values)
    for chunk in reader(file, chunk_rows or WHOLE_FILE_ROWS, missing):
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


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# --- CSV ---------------------------------------------------------------------------------------


def _csv_chunks(file: Path, chunk_rows: int, missing: frozenset[str]) -> Iterator[pd.DataFrame]:
    """Text chunks, whitespace stripped and missing values marked (see _clean_text)."""
    _check_text(file)
    delimiter, header = _csv_header(file)
    for chunk in _csv_text_chunks(file, delimiter, header, chunk_rows):
        chunk = _clean_text(chunk, missing)
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
    options = dict(
        sep=delimiter,
        header=0,
        names=header,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        index_col=False,
        encoding="utf-8-sig",
        chunksize=chunk_rows,
    )
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
                raise _cannot_read(
                    file,
                    f"not UTF-8 text: byte 0x{error.object[error.start]:02x} at byte "
                    f"{offset + at} (line {where}) cannot be decoded; save the file as "
                    "UTF-8 (it may be latin-1 or cp1252)",
                ) from None
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
        where = "; ".join(
            f"{name!r} at columns {', '.join(str(i + 1) for i, n in enumerate(names) if n == name)}"
            for name in repeated
        )
        raise DataError(f"{file}: duplicate column names in the header: {where}; rename them")
    _require_own_names(file, names)
    return delimiter, names


def _require_own_names(file: Path, names: list[str]) -> None:
    """A supplier column may not take a name overnight adds to every row: its values would be
    replaced by the file names, row numbers, hashes or reasons written there."""
    taken = [(position, name) for position, name in enumerate(names, start=1) if reserved_name(name)]
    if taken:
        where = ", ".join(f"{name!r} (column {position})" for position, name in taken)
        raise DataError(f"{file}: {where}: a name overnight keeps for its own columns; rename it in the file")


def _first_record(file: Path, delimiter: str) -> list[str]:
    with open(file, newline="", encoding="utf-8-sig") as handle:
        try:
            return next((record for record in csv.reader(handle, delimiter=delimiter) if not _blank(record)), [])
        except csv.Error as error:
            raise _cannot_read(file, f"header: {error}") from None


def _blank(record: list[str]) -> bool:
    # pandas skips lines that hold nothing but spaces; they are not rows.
    return not record or (len(record) == 1 and not record[0].strip())


def _csv_module_chunks(
    file: Path, delimiter: str, header: list[str], chunk_rows: int, skip: int
) -> Iterator[pd.DataFrame]:
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


def _clean_text(frame: pd.DataFrame, missing: frozenset[str], columns=None) -> pd.DataFrame:
    """Surrounding whitespace stripped and missing texts as missing: " red" is red, " NaN" missing."""
    for column in [c for c in frame.columns if c not in SOURCE_COLUMNS] if columns is None else columns:
        stripped = frame[column].str.strip()
        frame[column] = stripped.mask(stripped.isin(missing))
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


def _parquet_chunks(file: Path, chunk_rows: int, missing: frozenset[str]) -> Iterator[pd.DataFrame]:
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
        # A nameless column is named by its position, as a CSV header's blank name is.
        named = [name if name.strip() else f"{UNNAMED}{position}" for position, name in enumerate(names)]
        _require_own_names(file, named)
        empty = True
        for batch in batches:
            empty = False
            yield _clean_parquet_text(batch.to_pandas().set_axis(named, axis=1), missing)
        if empty:
            yield parquet.schema_arrow.empty_table().to_pandas().set_axis(named, axis=1)
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _cannot_read(file, _first_line(error)) from None


def _clean_parquet_text(frame: pd.DataFrame, missing: frozenset[str]) -> pd.DataFrame:
    text = [column for column in frame.columns if pd.api.types.infer_dtype(frame[column], skipna=True) == "string"]
    return _clean_text(frame, missing, text)
