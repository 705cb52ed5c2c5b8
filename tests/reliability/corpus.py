"""A corpus of malformed inputs (issue 5, item 3), for training data and nightly batches alike.

Every case writes its file(s) into a folder, with the label column for training data and
without it for a nightly batch, and states what must happen on each side: a DataError whose
message names the file (and the column, rows or line where they exist), or exactly how many rows
are kept and rejected and why. test_bad_input.py runs every case both ways; docs/bad-input.md
lists them. Nothing here is random: seeded bytes, fixed rows, so a failure reproduces.

A good table has BASE_ROWS rows; the nightly side reads it in chunks of CHUNK_ROWS, so a bad row
at ROW (17) is the first row of the second chunk. Rows are counted from 1 without the header,
so row r is on line r + 1 of the file unless a value before it holds a newline.
"""

from __future__ import annotations

import csv
import gzip
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

BASE_ROWS = 40
CHUNK_ROWS = 16
ROW = 17  # the row a case spoils: the first of the second nightly chunk
LABEL = "label"
# Column order puts the label in the middle and two features last, so that a short row loses
# features (missing values), not the label or the date.
COLUMNS = ["id", "day", LABEL, "colour", "size", "note"]
SQL_TEXT = (
    "Robert'); DROP TABLE predictions; --",
    "1' OR '1'='1",
    'x"; DELETE FROM runs WHERE "1"="1',
    "\\N",
    "NULL-but-not-null",
    "'; COPY predictions TO '/tmp/x'; --",
)
MEGABYTE = 1 << 20


# --- expectations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What must happen. error: a regex the DataError matches (it must also name a file).
    Otherwise valid and rejected rows exactly, each rejected row's reason containing the text at
    its position in `reasons`, and each text of `problems` in some reported problem line."""

    error: str = ""
    valid: int = 0
    reasons: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def rejected(self) -> int:
        return len(self.reasons)


def kept(valid: int = BASE_ROWS, *reasons: str, problems: tuple[str, ...] = ()) -> Expect:
    return Expect(valid=valid, reasons=reasons, problems=problems)


def fails(pattern: str) -> Expect:
    return Expect(error=pattern)


@dataclass(frozen=True)
class Case:
    """One malformed input. write(folder, labeled) writes it and returns the rows it holds (the
    examples a reader could lose); kinds are [dataset] kinds for training."""

    name: str
    what: str
    write: Callable[[Path, bool], int]
    training: Expect
    nightly: Expect
    kinds: dict[str, str] = field(default_factory=dict)


# --- good rows and files -----------------------------------------------------------------------


def good_rows(count: int = BASE_ROWS, prefix: str = "r") -> list[dict[str, str]]:
    colours = ("red", "green", "blue")
    return [
        {
            "id": f"{prefix}{i:03d}",
            "day": f"2024-01-{i % 28 + 1:02d}",
            LABEL: "yes" if i % 2 else "no",
            "colour": colours[i % 3],
            "size": f"{1 + i * 0.5:g}",
            "note": f"a calm little note number {i} here",
        }
        for i in range(count)
    ]


def columns(labeled: bool) -> list[str]:
    return COLUMNS if labeled else [c for c in COLUMNS if c != LABEL]


def csv_text(
    rows: list[dict[str, str]],
    labeled: bool,
    *,
    delimiter: str = ",",
    newline: str = "\n",
    header: list[str] | None = None,
) -> str:
    """CSV as a careful writer makes it (values quoted when needed)."""
    names = header or columns(labeled)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(names)
    writer.writerows([[row.get(name, "") for name in columns(labeled)] for row in rows])
    return buffer.getvalue()


def lines(rows: list[dict[str, str]], labeled: bool) -> list[str]:
    """The header and one line per row, for cases that spoil a line by hand."""
    return csv_text(rows, labeled).splitlines()


def spoiled(column: str, *values: str, at: int = ROW) -> Callable[[Path, bool], int]:
    """A good file whose `column` holds `values` from row `at` on."""

    def write(folder: Path, labeled: bool) -> int:
        rows = good_rows()
        for offset, value in enumerate(values):
            rows[at - 1 + offset][column] = value
        (folder / "spoiled.csv").write_text(csv_text(rows, labeled))
        return len(rows)

    return write


def text_file(
    name: str, make: Callable[[bool], str], rows: int = BASE_ROWS, *, newline: str | None = None
) -> Callable[[Path, bool], int]:
    def write(folder: Path, labeled: bool) -> int:
        with open(folder / name, "w", encoding="utf-8", newline=newline) as handle:
            handle.write(make(labeled))
        return rows

    return write


def bytes_file(name: str, make: Callable[[bool], bytes], rows: int = 0) -> Callable[[Path, bool], int]:
    def write(folder: Path, labeled: bool) -> int:
        (folder / name).write_bytes(make(labeled))
        return rows

    return write


def line_of_byte(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


# --- the cases ---------------------------------------------------------------------------------


def _header_only(labeled: bool) -> str:
    return ",".join(columns(labeled)) + "\n"


def _blank_lines(labeled: bool) -> str:
    return "\n  \n\n"


def _duplicate_names(labeled: bool) -> str:
    header = columns(labeled) + ["size"]
    return ",".join(header) + "\n" + "\n".join(line + ",9" for line in lines(good_rows(), labeled)[1:]) + "\n"


def _extra_column(labeled: bool) -> str:
    text = lines(good_rows(), labeled)
    return "\n".join([text[0] + ",extra"] + [line + f",{i}" for i, line in enumerate(text[1:])]) + "\n"


def _without(column: str):
    def make(labeled: bool) -> str:
        rows = [{k: v for k, v in row.items() if k != column} for row in good_rows()]
        names = [c for c in columns(labeled) if c != column]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([[row[name] for name in names] for row in rows])
        return buffer.getvalue()

    return make


def _ragged(extra: bool, at: int = ROW):
    def make(labeled: bool) -> str:
        text = lines(good_rows(), labeled)
        if extra:
            text[at] += ",surplus"
        else:
            text[at] = ",".join(text[at].split(",")[:-2])  # no size, no note
        return "\n".join(text) + "\n"

    return make


def _megabyte_and_ragged(labeled: bool) -> str:
    rows = good_rows()
    rows[2]["note"] = "word " * (MEGABYTE // 5)
    text = lines(rows, labeled)
    text[ROW] += ",surplus"
    return "\n".join(text) + "\n"


def _quoted_newlines(labeled: bool) -> str:
    rows = good_rows()
    rows[1]["note"] = 'first line, with a comma\nsecond line with "quotes"\r\nthird line'
    return csv_text(rows, labeled)


def _unterminated_quote(labeled: bool) -> str:
    text = lines(good_rows(), labeled)
    text[ROW] = text[ROW].replace("a calm", '"a calm', 1)
    return "\n".join(text) + "\n"


def _binary(labeled: bool) -> bytes:
    return np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes()


def _zero_filled_tail(labeled: bool) -> bytes:
    # A crash mid-write on some file systems leaves the end of a file as NUL bytes.
    return csv_text(good_rows(), labeled).encode() + b"\0" * 512


def _zero_filled_offset(labeled: bool) -> int:
    return len(csv_text(good_rows(), labeled).encode())


def _gzip(labeled: bool) -> bytes:
    return gzip.compress(csv_text(good_rows(), labeled).encode(), mtime=0)


def _xlsx(labeled: bool) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def _latin1(labeled: bool) -> bytes:
    rows = good_rows()
    rows[4]["colour"] = "café"
    return csv_text(rows, labeled).encode("latin-1")


def _latin1_offset(labeled: bool) -> int:
    return _latin1(labeled).index("é".encode("latin-1"))


def _bom(labeled: bool) -> bytes:
    return b"\xef\xbb\xbf" + csv_text(good_rows(), labeled).encode()


def _european(labeled: bool) -> str:
    rows = good_rows()
    for row in rows:
        row["size"] = row["size"].replace(".", ",")
    rows[ROW - 1]["size"] = "1.234,5"
    return csv_text(rows, labeled, delimiter=";")


def _sql(labeled: bool) -> str:
    rows = good_rows()
    for i, text in enumerate(SQL_TEXT):
        rows[i]["id"] = text
        rows[i]["colour"] = text
        rows[i]["note"] = f"note {text} and more words"
    return csv_text(rows, labeled)


def _whitespace(labeled: bool) -> str:
    rows = good_rows()
    for row in rows:
        row["colour"] = f"  {row['colour']}\t"
        row["size"] = f" {row['size']}  "
        row["id"] = f" {row['id']} "
    header = [f" {name} " for name in columns(labeled)]
    return csv_text(rows, labeled, header=header)


def _trailing_delimiter(labeled: bool) -> str:
    return "\n".join(line + "," for line in lines(good_rows(), labeled)) + "\n"


def _repeated_header(labeled: bool) -> str:
    text = lines(good_rows(), labeled)
    return "\n".join(text[:ROW] + [text[0]] + text[ROW:]) + "\n"  # one more row: the header again


def _duplicate_ids(labeled: bool) -> str:
    rows = good_rows()
    rows[ROW - 1]["id"] = rows[2]["id"]  # row 17 repeats row 3's id: another nightly chunk
    rows[5]["id"] = rows[4]["id"]  # row 6 repeats row 5's: the same chunk
    return csv_text(rows, labeled)


def _unseen_values(labeled: bool) -> str:
    rows = good_rows()
    rows[ROW - 1]["colour"] = "purple"
    rows[ROW - 1][LABEL] = "maybe"
    return csv_text(rows, True)  # the label column even at night: a labeled batch


def _parquet(make: Callable[[bool], pd.DataFrame], name: str = "typed.parquet"):
    def write(folder: Path, labeled: bool) -> int:
        frame = make(labeled)
        frame.to_parquet(folder / name, index=False)
        return len(frame)

    return write


def _parquet_wrong_types(labeled: bool) -> pd.DataFrame:
    frame = pd.DataFrame(good_rows())[columns(labeled)]
    frame["size"] = frame["size"].astype(object)
    frame.loc[ROW - 1, "size"] = "heavy"  # a numeric column stored as text, one value a word
    frame["day"] = pd.to_datetime(frame["day"])  # a timestamp type for the time column
    frame["colour"] = np.arange(len(frame)) % 3  # integers where training had words
    return frame


def _named_extra(*names: str):
    """Good rows with extra columns of these names (each holding the row's number)."""

    def make(labeled: bool) -> str:
        text = lines(good_rows(), labeled)
        extra = "".join(f",{i}" for i in range(len(names)))
        return "\n".join([text[0] + "," + ",".join(names)] + [line + extra for line in text[1:]]) + "\n"

    return make


def _parquet_named_extra(name: str, file_name: str):
    """A Parquet file of good rows with one extra column of this name (empty: no name)."""

    def write(folder: Path, labeled: bool) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = pd.DataFrame(good_rows())[columns(labeled)]
        arrays = [pa.array(frame[column]) for column in frame.columns] + [pa.array(np.arange(len(frame)))]
        pq.write_table(pa.Table.from_arrays(arrays, names=[*frame.columns, name]), folder / file_name)
        return len(frame)

    return write


def _parquet_duplicate_names(folder: Path, labeled: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.DataFrame(good_rows())[columns(labeled)]
    arrays = [pa.array(frame[name]) for name in frame.columns] + [pa.array(frame["size"])]
    pq.write_table(pa.Table.from_arrays(arrays, names=[*frame.columns, "size"]), folder / "twice.parquet")
    return len(frame)


def _missing_spellings(folder: Path, labeled: bool) -> int:
    rows = good_rows()
    for offset, value in enumerate(("NaN", "nan", "NULL", "", " NA ")):
        rows[ROW - 1 + offset]["size"] = value
    rows[2][LABEL] = "NULL"  # a label spelled as missing: that training row is rejected
    (folder / "spoiled.csv").write_text(csv_text(rows, labeled))
    return len(rows)


def _good(name: str = "good.csv", prefix: str = "g") -> Callable[[Path, bool], int]:
    def write(folder: Path, labeled: bool) -> int:
        (folder / name).write_text(csv_text(good_rows(prefix=prefix), labeled))
        return BASE_ROWS

    return write


def _partly_bad(folder: Path, labeled: bool) -> int:
    rows = good_rows(prefix="b")
    rows[ROW - 1]["size"] = "heavy"
    rows[ROW]["day"] = "not a day"
    (folder / "partly-bad.csv").write_text(csv_text(rows, labeled))
    return len(rows)


def _mixed_folder(folder: Path, labeled: bool) -> int:
    total = _good()(folder, labeled) + _partly_bad(folder, labeled)
    (folder / "header-only.csv").write_text(_header_only(labeled))
    (folder / "empty.csv").write_bytes(b"")
    return total


def _folder_with_garbage(folder: Path, labeled: bool) -> int:
    _good()(folder, labeled)
    (folder / "garbage.csv").write_bytes(_binary(labeled))
    return BASE_ROWS  # the good file's rows: the run fails, so none is scored and none lost


def _folder_file_without_label(folder: Path, labeled: bool) -> int:
    _good()(folder, labeled)
    (folder / "nolabel.csv").write_text(_without(LABEL)(labeled))
    return 2 * BASE_ROWS


def _folder_columns_differ(folder: Path, labeled: bool) -> int:
    _good()(folder, labeled)
    _good("second.csv", "s")(folder, labeled)
    (folder / "short.csv").write_text(_without("size")(labeled))
    return 3 * BASE_ROWS


FLOAT32_MAX = "3.4e+38"


CASES: tuple[Case, ...] = (
    Case(
        "empty-file",
        "a file of 0 bytes",
        bytes_file("empty.csv", lambda labeled: b""),
        fails(r"empty\.csv: cannot be read as CSV: empty file \(0 bytes\)"),
        kept(0, problems=("empty.csv: cannot be read as CSV: empty file (0 bytes); it adds no rows",)),
    ),
    Case(
        "header-only",
        "the header line and no rows",
        text_file("header.csv", _header_only, 0),
        fails(r"header\.csv: no rows \(header only\)"),
        kept(0, problems=("header.csv: no rows (header only); it adds no rows",)),
    ),
    Case(
        "blank-lines-only",
        "blank and space-only lines, no header",
        text_file("blank.csv", _blank_lines, 0),
        fails(r"blank\.csv: no header, no rows"),
        kept(0, problems=("blank.csv: no header, no rows",)),
    ),
    Case(
        "missing-label-column",
        "no label column",
        text_file("nolabel.csv", _without(LABEL)),
        fails(r"nolabel\.csv: missing label column 'label'; it has 'id', 'day', 'colour'"),
        kept(),
    ),
    Case(
        "missing-feature-column",
        "a feature column (size) absent",
        text_file("nosize.csv", _without("size")),
        fails(r"nosize\.csv: missing columns 'size' \(named in \[dataset\] kinds\); it has 'id'"),
        fails(r"nosize\.csv: missing columns 'size'; it has 4 columns$"),
        kinds={"size": "numeric"},
    ),
    Case(
        "unknown-extra-column",
        "a column training never had",
        text_file("extra.csv", _extra_column),
        kept(),
        kept(problems=("extra.csv: column 'extra', all rows: expected no such column (it is ignored)",)),
    ),
    Case(
        "text-in-numeric-column",
        "a word in the numeric column size",
        spoiled("size", "heavy"),
        kept(39, "size: expected a number"),
        kept(
            39,
            "size: expected a number",
            problems=("spoiled.csv: column 'size', rows 17: expected a number, found 'heavy'",),
        ),
    ),
    Case(
        "infinities",
        "inf, -Infinity in size",
        spoiled("size", "inf", "-Infinity"),
        kept(38, "size: expected a finite number", "size: expected a finite number"),
        kept(38, "size: expected a finite number", "size: expected a finite number"),
    ),
    Case(
        "huge-numbers",
        "1e300, -3e39 and 1e400 (past float64) in size; 3e38 is kept",
        spoiled("size", "1e300", "-3e39", "1e400", "3e38"),
        kept(
            37,
            f"size: expected a number within ±{FLOAT32_MAX} (float32)",
            f"size: expected a number within ±{FLOAT32_MAX} (float32)",
            "size: expected a finite number",
        ),
        kept(
            37,
            f"size: expected a number within ±{FLOAT32_MAX} (float32)",
            f"size: expected a number within ±{FLOAT32_MAX} (float32)",
            "size: expected a finite number",
        ),
    ),
    Case(
        "missing-value-spellings",
        'NaN, nan, NULL, "", " NA " in size; NULL as a label',
        _missing_spellings,
        kept(39, "label: expected a label"),
        kept(),
    ),
    Case(
        "all-missing-column",
        "size empty in every row",
        spoiled("size", *[""] * BASE_ROWS, at=1),
        kept(problems=("spoiled.csv: column 'size', all rows: expected some values, found none",)),
        kept(problems=("spoiled.csv: column 'size', all rows: expected some values, found none",)),
    ),
    Case(
        "duplicate-column-names",
        "size twice in the header",
        text_file("twice.csv", _duplicate_names),
        fails(r"twice\.csv: duplicate column names in the header: 'size' at columns \d, \d; rename them"),
        fails(r"twice\.csv: duplicate column names in the header: 'size' at columns \d, \d; rename them"),
    ),
    Case(
        "byte-order-mark",
        "a UTF-8 byte-order mark before the header",
        bytes_file("bom.csv", _bom, BASE_ROWS),
        kept(),
        kept(),
    ),
    Case(
        "semicolon-delimiter",
        "';' between values",
        text_file("semicolon.csv", lambda labeled: csv_text(good_rows(), labeled, delimiter=";")),
        kept(),
        kept(),
    ),
    Case(
        "semicolon-decimal-commas",
        "';' between values and decimal commas (3,5 and 1.234,5)",
        text_file("european.csv", _european),
        kept(),
        kept(),
    ),
    Case(
        "tab-delimiter",
        "tabs between values (a .csv that is TSV)",
        text_file("tabs.csv", lambda labeled: csv_text(good_rows(), labeled, delimiter="\t")),
        kept(),
        kept(),
    ),
    Case(
        "ragged-long-row",
        "row 17 has one field too many",
        text_file("long.csv", _ragged(True)),
        kept(39, "line 18: 7 fields, the header has 6 (extra: 'surplus')"),
        kept(
            39,
            "line 18: 6 fields, the header has 5 (extra: 'surplus')",
            problems=("long.csv: rows 17: expected as many fields as the header",),
        ),
    ),
    Case(
        "ragged-long-first-row",
        "row 1 has one field too many (pandas would shift or drop)",
        text_file("first.csv", _ragged(True, at=1)),
        kept(39, "line 2: 7 fields, the header has 6 (extra: 'surplus')"),
        kept(39, "line 2: 6 fields, the header has 5 (extra: 'surplus')"),
    ),
    Case(
        "ragged-short-row",
        "row 17 lacks its last two fields (size, note)",
        text_file("short.csv", _ragged(False)),
        kept(),
        kept(),
    ),
    Case(
        "crlf-line-ends",
        "Windows line ends",
        text_file("crlf.csv", lambda labeled: csv_text(good_rows(), labeled, newline="\r\n"), newline=""),
        kept(),
        kept(),
    ),
    Case(
        "cr-line-ends",
        "old Mac line ends (CR only)",
        text_file("cr.csv", lambda labeled: csv_text(good_rows(), labeled, newline="\r"), newline=""),
        kept(),
        kept(),
    ),
    Case(
        "quoted-newlines",
        "a quoted value holding newlines, a comma and quotes",
        text_file("quoted.csv", _quoted_newlines, newline=""),
        kept(),
        kept(),
    ),
    Case(
        "unterminated-quote",
        "a quote opened on row 17 and never closed",
        text_file("openquote.csv", _unterminated_quote),
        fails(r"openquote\.csv: cannot be read as CSV: line 18: unexpected end of data"),
        fails(r"openquote\.csv: cannot be read as CSV: line 18: unexpected end of data"),
    ),
    Case(
        "binary-garbage",
        "4 KiB of random bytes named .csv",
        bytes_file("garbage.csv", _binary),
        fails(r"garbage\.csv: cannot be read as CSV: (binary data|not UTF-8 text)"),
        fails(r"garbage\.csv: cannot be read as CSV: (binary data|not UTF-8 text)"),
    ),
    Case(
        "zero-filled-tail",
        "good rows, then 512 NUL bytes (a crash mid-write)",
        bytes_file("zeros.csv", _zero_filled_tail, BASE_ROWS),
        fails(r"zeros\.csv: cannot be read as CSV: binary data: a NUL byte at byte \d+ \(line 42\)"),
        fails(r"zeros\.csv: cannot be read as CSV: binary data: a NUL byte at byte \d+ \(line 42\)"),
    ),
    Case(
        "gzip-named-csv",
        "a gzip file named .csv",
        bytes_file("packed.csv", _gzip, BASE_ROWS),
        fails(r"packed\.csv: cannot be read as CSV: it is gzip-compressed: decompress it first"),
        fails(r"packed\.csv: cannot be read as CSV: it is gzip-compressed: decompress it first"),
    ),
    Case(
        "xlsx-named-csv",
        "a ZIP archive (Excel workbook) named .csv",
        bytes_file("book.csv", _xlsx),
        fails(r"book\.csv: cannot be read as CSV: it is a ZIP archive"),
        fails(r"book\.csv: cannot be read as CSV: it is a ZIP archive"),
    ),
    Case(
        "latin-1-bytes",
        "latin-1 text (café) instead of UTF-8",
        bytes_file("latin1.csv", _latin1, BASE_ROWS),
        fails(
            r"latin1\.csv: cannot be read as CSV: not UTF-8 text: byte 0xe9 at byte \d+ \(line 6\) cannot be "
            r"decoded; save the file as UTF-8"
        ),
        fails(r"latin1\.csv: cannot be read as CSV: not UTF-8 text: byte 0xe9 at byte \d+ \(line 6\)"),
    ),
    Case(
        "megabyte-text-and-ragged-row",
        "a 1 MiB note on row 3 and a long row 17 (the slow reader's field limit)",
        text_file("huge.csv", _megabyte_and_ragged),
        kept(39, "line 18: 7 fields, the header has 6"),
        kept(39, "line 18: 6 fields, the header has 5"),
    ),
    Case(
        "megabyte-id",
        "a 1 MiB id on row 17 (over predictions.example_id's 200 characters)",
        spoiled("id", "i" * MEGABYTE),
        kept(39, "id: expected an id of at most 200 characters"),
        kept(39, "id: expected an id of at most 200 characters"),
    ),
    Case(
        "sql-looking-strings",
        "ids, categories and text like '); DROP TABLE predictions; --",
        text_file("sql.csv", _sql),
        kept(),
        kept(),
    ),
    Case(
        "thousands-separators",
        '"1,234" and "12,345.5" (read as numbers); "1,5" (a decimal comma, rejected)',
        spoiled("size", "1,234", "12,345.5", "1,5"),
        kept(39, "size: expected a number"),
        kept(39, "size: expected a number"),
    ),
    Case(
        "surrounding-whitespace",
        "spaces and tabs around names, ids, categories and numbers",
        text_file("spaces.csv", _whitespace),
        kept(),
        kept(),
    ),
    Case(
        "trailing-delimiter",
        "a comma at the end of every line (a nameless empty column)",
        text_file("trailing.csv", _trailing_delimiter),
        kept(),
        kept(problems=("trailing.csv: column 'Unnamed: 5', all rows: expected no such column",)),
    ),
    Case(
        "repeated-header-line",
        "the header again as row 17 (two files pasted together)",
        text_file("pasted.csv", _repeated_header, BASE_ROWS + 1),
        kept(40, "repeated header"),
        kept(40, "repeated header"),
    ),
    Case(
        "bad-dates",
        "2024-13-45 and 'yesterday' in the time column",
        spoiled("day", "2024-13-45", "yesterday"),
        kept(38, "day: expected a date or a number", "day: expected a date or a number"),
        kept(38, "day: expected a date or a number", "day: expected a date or a number"),
    ),
    Case(
        "duplicate-ids",
        "row 6 repeats row 5's id; row 17 (next chunk) repeats row 3's",
        text_file("dupes.csv", _duplicate_ids),
        kept(38, "id: expected a unique id", "id: expected a unique id"),
        kept(
            38,
            "id: expected a unique id",
            "example_id: expected a unique id (seen in an earlier chunk)",
            problems=(
                "dupes.csv: column 'id', rows 6: expected a unique id, found 'r004'",
                "dupes.csv: column 'example_id', rows 17: expected a unique id (seen in an earlier chunk)",
            ),
        ),
    ),
    Case(
        "unseen-category-and-label",
        "colour 'purple' and label 'maybe' on row 17, label column at night too",
        text_file("unseen.csv", _unseen_values),
        kept(),
        kept(
            problems=(
                "unseen.csv: column 'colour', rows 17: expected a category in the model's vocabulary",
                "unseen.csv: column 'label', rows 17: expected a class the model knows (the row is scored), "
                "found 'maybe'",
            )
        ),
    ),
    Case(
        "parquet-wrong-types",
        "Parquet: size as text with a word, day as timestamps, colour as integers",
        _parquet(_parquet_wrong_types),
        kept(39, "size: expected a number"),
        kept(39, "size: expected a number", problems=("typed.parquet: column 'colour', rows 1, 2, 3",)),
    ),
    Case(
        "parquet-duplicate-columns",
        "Parquet with the column size twice",
        _parquet_duplicate_names,
        fails(r"twice\.parquet: cannot be read as PARQUET: duplicate column names 'size'"),
        fails(r"twice\.parquet: cannot be read as PARQUET: duplicate column names 'size'"),
    ),
    Case(
        "internal-column-names",
        "columns named _source_file and duplicate_key (names overnight adds to every row)",
        text_file("internal.csv", _named_extra("_source_file", "duplicate_key")),
        fails(r"internal\.csv: '_source_file' \(column \d\), 'duplicate_key' \(column \d\): a name overnight keeps"),
        fails(r"internal\.csv: '_source_file' \(column \d\), 'duplicate_key' \(column \d\): a name overnight keeps"),
    ),
    Case(
        "column-named-reason",
        "a column named reason (the rejects file's column)",
        text_file("reason.csv", _named_extra("reason")),
        fails(r"reason\.csv: 'reason' \(column \d\): a name overnight keeps for its own columns; rename it"),
        fails(r"reason\.csv: 'reason' \(column \d\): a name overnight keeps for its own columns; rename it"),
    ),
    Case(
        "column-named-example-id",
        "a column named example_id that is not the configured id column",
        text_file("example-id.csv", _named_extra("example_id")),
        fails(
            r"example-id\.csv: column 'example_id' is where overnight keeps each row's id; set \[dataset\] id_column"
        ),
        fails(
            r"example-id\.csv: column 'example_id' is where overnight keeps each row's id; set \[dataset\] id_column"
        ),
    ),
    Case(
        "nameless-column-with-values",
        "a blank name in the header over a column of values (a row index pandas wrote)",
        text_file("nameless.csv", _named_extra("")),
        fails(r"nameless\.csv: column 7 has no name in the header but holds values"),
        kept(problems=("nameless.csv: column 'Unnamed: 5', all rows: expected no such column",)),
    ),
    Case(
        "parquet-internal-column-name",
        "Parquet with a column named _source_row",
        _parquet_named_extra("_source_row", "internal.parquet"),
        fails(r"internal\.parquet: '_source_row' \(column \d\): a name overnight keeps for its own columns"),
        fails(r"internal\.parquet: '_source_row' \(column \d\): a name overnight keeps for its own columns"),
    ),
    Case(
        "parquet-nameless-column",
        "Parquet with a column whose name is empty, holding values",
        _parquet_named_extra("", "nameless.parquet"),
        fails(r"nameless\.parquet: column 7 has no name in the header but holds values"),
        kept(problems=("nameless.parquet: column 'Unnamed: 5', all rows: expected no such column",)),
    ),
    Case(
        "corrupt-parquet",
        "random bytes named .parquet",
        bytes_file("broken.parquet", _binary),
        fails(r"broken\.parquet: cannot be read as PARQUET: "),
        fails(r"broken\.parquet: cannot be read as PARQUET: "),
    ),
    Case(
        "folder-good-and-bad",
        "a folder: a good file, a partly bad one, a header-only and an empty file",
        _mixed_folder,
        kept(78, "size: expected a number", "day: expected a date or a number"),
        kept(
            78,
            "size: expected a number",
            "day: expected a date or a number",
            problems=(
                "empty.csv: cannot be read as CSV: empty file (0 bytes); it adds no rows",
                "header-only.csv: no rows (header only); it adds no rows",
            ),
        ),
    ),
    Case(
        "folder-with-garbage",
        "a folder: a good file and binary garbage",
        _folder_with_garbage,
        fails(r"garbage\.csv: cannot be read as CSV"),
        fails(r"garbage\.csv: cannot be read as CSV"),
    ),
    Case(
        "folder-file-without-label",
        "a folder: a good file and one without the label column",
        _folder_file_without_label,
        fails(r"nolabel\.csv: missing label column 'label'; it has 'id'"),
        kept(2 * BASE_ROWS),
    ),
    Case(
        "folder-columns-differ",
        "a folder: two good files and one without size",
        _folder_columns_differ,
        fails(r"short\.csv: columns differ from .*good\.csv: missing 'size'"),
        fails(r"short\.csv: missing columns 'size'"),
    ),
)


# --- images ------------------------------------------------------------------------------------

IMAGE_SIZE = (8, 8)


def png(path: Path, shade: int, size: tuple[int, int] = IMAGE_SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (shade, 255 - shade, shade // 2)).save(path, format="PNG")
    return path


def flat_png(path: Path, width: int, height: int) -> Path:
    """A one-colour PNG of any size, written without holding its pixels: a palette of one colour,
    one bit a pixel, rows of zeros deflated (a 12000 x 12000 file is 19 KB, a 20000 x 10000 one 24 KB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = bytes(1 + (width + 7) // 8) * height  # each row: filter byte 0, then width bits of colour 0
    header = struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)  # 1 bit, palette, deflate, no interlace
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"PLTE", bytes((90, 165, 45)))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
    return path


def bad_image(kind: str, path: Path) -> Path:
    """A file with an image's name that is not what TensorFlow can decode, or an odd one that is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(2).random((32, 32, 3)) * 255).astype("uint8")
    if kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    elif kind == "truncated-jpeg":
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    elif kind == "tiff-named-png":
        Image.fromarray(pixels).save(path, format="TIFF")
    elif kind == "wrong-size":
        png(path, 90, size=(40, 24))
    elif kind == "huge":
        flat_png(path, 12000, 12000)  # 144 million pixels: Pillow warns, and decodes it
    elif kind == "bomb":
        flat_png(path, 20000, 10000)  # 200 million: over Pillow's limit, refused from the header
    return path


# (case name, what, bad file name, kind, rejected reason or "" when the image is kept and scored)
IMAGE_CASES: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "corrupt-image",
        "a .png of PNG signature then garbage",
        "broken.png",
        "corrupt",
        "image: expected a readable image",
    ),
    (
        "truncated-jpeg",
        "a JPEG cut in half (Pillow's verify passes it; TensorFlow fails)",
        "half.jpg",
        "truncated-jpeg",
        "image: expected a readable image",
    ),
    (
        "tiff-named-png",
        "a TIFF file named .png (Pillow reads it; TensorFlow cannot)",
        "tiff.png",
        "tiff-named-png",
        "image: expected a readable image",
    ),
    ("wrongly-sized-image", "a 40x24 image where training had 8x8 (resized)", "big.png", "wrong-size", ""),
    (
        "huge-first-image",
        "a 12000x12000 PNG of 19 KB, the first image of the folder (issue 19, item 6: it sized the model)",
        "a-huge.png",
        "huge",
        "",
    ),
    (
        "decompression-bomb",
        "a 20000x10000 PNG of 24 KB: 200 million pixels, 600 MB decoded",
        "bomb.png",
        "bomb",
        "image: expected an image of at most 178,956,970 pixels (more is a decompression bomb)",
    ),
)


# --- what a person is shown, and files a careless operator points at (issue 19, items 7 and 9) -

# (case name, an example id a hostile supplier sends, how every terminal print must show it).
# Values are stored and exported verbatim; only what is printed for a person is escaped.
TERMINAL_IDS: tuple[tuple[str, str, str], ...] = (
    ("ansi-colour", "red\x1b[31mALERT\x1b[0m", "red\\x1b[31mALERT\\x1b[0m"),
    ("window-title-and-bell", "title\x1b]0;owned\x07", "title\\x1b]0;owned\\x07"),
    ("c1-csi-clear-screen", "c1\x9b2J", "c1\\x9b2J"),
    ("bidi-override", "invoice\u202egpj.exe", "invoice\\u202egpj.exe"),
    ("bidi-isolates", "iso\u2066late\u2069", "iso\\u2066late\\u2069"),
    ("line-breakers", "cr\rnl\ntab\tdel\x7fbs\x08", "cr\\rnl\\ntab\\tdel\\x7fbs\\x08"),
    ("letters-kept", "café-日本-Ωμέγα", "café-日本-Ωμέγα"),
)

VICTIM_TEXT = "someone else's file: must never change\n"
EXISTING_TEXT = "an earlier export\n"


@dataclass(frozen=True)
class OutputCase:
    """Where `overnight labeling-queue --output` is pointed. arrange(folder) lays out the scene
    and returns the path to give; written: the export lands there (else a one-line error matching
    `error`, exit 1, and every file in the folder unchanged)."""

    name: str
    what: str
    arrange: Callable[[Path], Path]
    force: bool = False
    written: bool = True
    error: str = ""


def _new_file(folder: Path) -> Path:
    return folder / "to-label.csv"


def _existing_file(folder: Path) -> Path:
    target = folder / "to-label.csv"
    target.write_text(EXISTING_TEXT)
    target.chmod(0o644)
    return target


def _link_to_victim(folder: Path) -> Path:
    (folder / "victim.txt").write_text(VICTIM_TEXT)
    (folder / "to-label.csv").symlink_to(folder / "victim.txt")
    return folder / "to-label.csv"


def _dangling_link(folder: Path) -> Path:
    (folder / "to-label.csv").symlink_to(folder / "planted.csv")  # would create planted.csv
    return folder / "to-label.csv"


def _missing_folders(folder: Path) -> Path:
    return folder / "exports" / "2026-11" / "to-label.csv"


def _file_in_the_way(folder: Path) -> Path:
    (folder / "exports").write_text(VICTIM_TEXT)
    return folder / "exports" / "to-label.csv"


OUTPUT_CASES: tuple[OutputCase, ...] = (
    OutputCase("new-file", "a file that does not exist yet", _new_file),
    OutputCase(
        "existing-file",
        "an earlier export, without --force",
        _existing_file,
        written=False,
        error=r"to-label\.csv exists: give --force to replace it",
    ),
    OutputCase("existing-file-forced", "an earlier export (0644), with --force", _existing_file, force=True),
    OutputCase(
        "symlink-to-a-file",
        "a symbolic link to someone else's file",
        _link_to_victim,
        written=False,
        error=r"to-label\.csv: is a symbolic link, never written through",
    ),
    OutputCase(
        "symlink-to-a-file-forced",
        "a symbolic link to someone else's file, with --force",
        _link_to_victim,
        force=True,
        written=False,
        error=r"to-label\.csv: is a symbolic link, never written through",
    ),
    OutputCase(
        "dangling-symlink",
        "a symbolic link to a file that does not exist yet",
        _dangling_link,
        force=True,
        written=False,
        error=r"to-label\.csv: is a symbolic link, never written through",
    ),
    OutputCase("missing-folders", "two folders that do not exist yet", _missing_folders),
    OutputCase(
        "file-in-the-way",
        "a file where the folder should be",
        _file_in_the_way,
        written=False,
        error=r"cannot write .*exports/to-label\.csv: .*exports: exists and is not a folder",
    ),
)

# --limit values a careless operator types: refused by the option's range (exit 2), never a query.
BAD_LIMITS: tuple[str, ...] = ("-1", "0", "ten")
