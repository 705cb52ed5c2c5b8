"""Validation stage: type every column, report every problem at once, keep rejected rows.

Fatal problems (no label column, a missing feature column, no rows) raise DataError with one
line. Row problems (a word in a numeric column, a missing image, a missing label) reject the
row: it goes to the rejects table with its reason, and the report names file, column and rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from pipeline.common.columns import (
    DUPLICATE_KEY,
    EXAMPLE_ID,
    EXAMPLE_ID_LENGTH,
    REASON,
    SOURCE_COLUMNS,
    SOURCE_FILE,
    SOURCE_PROBLEM,
    SOURCE_ROW,
)
from pipeline.common.files import file_sha256
from pipeline.common.hashing import row_hashes
from pipeline.errors import DataError
from pipeline.stages.dates import AmbiguousDates, parse_dates, parse_times
from pipeline.stages.images import MAX_IMAGE_BYTES, check_decodable, file_problem, pixel_limit
from pipeline.stages.preprocessor import Preprocessor
from pipeline.stages.problems import Problem, collect_problems, rows_text
from pipeline.stages.schema import Schema, parse_numbers, plain_number_block, repeated_headers
from pipeline.stages.settings import ImageRules

# The model computes in float32: a larger magnitude would be infinite there, and its standardised
# value with it. Larger than float64 (1e400) parses as infinite and is rejected as such.
MAX_MAGNITUDE = float(np.finfo(np.float32).max)
# Ids end up in predictions.example_id; a longer one would fail the night's database load.
MAX_ID_CHARACTERS = EXAMPLE_ID_LENGTH
REPEATED_HEADER = "repeated header"  # the reason of a row that repeats the header line
IMAGE_PROBLEMS = {  # images.file_problem's findings, then the decoder's, as a row's expectation
    "outside": "an image inside {root}",  # [dataset] image_root
    "missing": "an existing image file",
    "special": "a regular file (not a device, FIFO or socket)",
    "too large": "an image file of at most {size}",  # [FitPreprocessor] max_image_bytes
    "too many pixels": "an image of at most {pixels:,} pixels (more is a decompression bomb)",
    "unreadable": "a readable image",
}
UNIQUE_ID = "a unique id"  # what a row whose id an earlier row had was expected to have


@dataclass
class ValidationResult:
    valid: pd.DataFrame  # typed columns, plus example_id (and duplicate_key for labeled rows)
    rejects: pd.DataFrame  # the rejected rows as read, plus their reason
    problems: list[Problem] = field(default_factory=list)
    missing_share: dict[str, float] = field(default_factory=dict)
    schema: Schema | None = None  # the schema with every date column's reading rule decided
    warnings: list[str] = field(default_factory=list)  # one line each: the data is readable but suspect

    def reject(self, bad: pd.Series, column: str, expected: str) -> None:
        """Move valid rows a later check found bad (bad: a mask on `valid`) to the rejects, with a problem."""
        bad = bad.reindex(self.valid.index, fill_value=False).astype(bool)
        if not bad.any():
            return
        problems, reasons = collect_problems(self.valid, [(bad, column, expected, self.valid[column])])
        rows = self.valid[bad].assign(**{REASON: reasons[bad]})
        self.rejects = pd.concat([self.rejects, rows.reindex(columns=self.rejects.columns)], ignore_index=True)
        self.valid = self.valid[~bad].reset_index(drop=True)
        self.problems += problems

    def report(self) -> dict:
        return {
            "rows_in": len(self.valid) + len(self.rejects),
            "rows_valid": len(self.valid),
            "rows_rejected": len(self.rejects),
            "missing_share": self.missing_share,
            "problems": [problem.as_dict() for problem in self.problems],
            "warnings": list(self.warnings),
        }


def validate(
    table: pd.DataFrame,
    schema: Schema,
    *,
    labeled: bool = True,
    require_rows: bool = True,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    image_root: str = "",
    content_ids: bool = True,
) -> ValidationResult:
    """Check a table against the schema; return typed valid rows, rejects and the problems.

    Args:
        table: as read by the raw stage, with source file and row columns.
        schema: the training schema (inferred on training data, saved, reused for batches).
        labeled: training data must have the label; nightly batches need not.
        require_rows: raise when nothing is usable (training); a nightly chunk may be all bad.
        max_image_bytes: larger image files are rejected unread (`[FitPreprocessor] max_image_bytes`).
        image_root: images whose real path is outside this folder are rejected unread
            (`[dataset] image_root`); empty: images may be anywhere.
        content_ids: without an id column, each row's id is a hash of its content; False: no id
            (None), for a caller that names the rows itself (the server).

    Raises:
        DataError: a required column is missing, there are no rows, or no row is usable.
    """
    source = _source_name(table)
    images = ImageRules(max_image_bytes, image_root)
    _require_columns(table, schema, labeled, source)
    if table.empty and require_rows:
        raise DataError(f"{source}: no rows")
    headers = repeated_headers(table)
    header_rows, table = table[headers].assign(**{REASON: REPEATED_HEADER}), table[~headers]
    # Typed columns gathered, then made a frame at once: a column inserted at a time costs more
    # than its checks when a request of one row is validated (pipeline/serving/scoring.py).
    columns: dict[str, pd.Series] = {}
    checks: list[tuple[pd.Series, str, str, pd.Series]] = []  # (bad rows, column, expected, found)
    notes: list[tuple[pd.Series, str, str, pd.Series]] = []  # reported, not rejected
    rules = dict(schema.date_formats)
    numeric = schema.columns_of("numeric")
    block = plain_number_block(table[numeric]) if len(numeric) > 1 else None
    for column, kind in schema.kinds.items():
        column_notes = []
        if kind == "datetime":
            columns[column], column_checks, column_notes, rules[column] = _dates(
                table, column, rules.get(column, ""), labeled
            )
        elif kind == "numeric" and block is not None:
            columns[column], column_checks = _numbers(table[column], parsed=block[column])
        else:
            columns[column], column_checks = _type_column(table[column], kind, images)
        checks += [(bad, column, expected, found) for bad, expected, found in column_checks]
        notes += [(bad, column, expected, found) for bad, expected, found in column_notes]
    if labeled or schema.label in table.columns:
        columns[schema.label], label_checks = _type_label(table[schema.label], schema.task, required=labeled)
        # A batch's label is not scored: a bad one is worth a word, not the row's prediction.
        (checks if labeled else notes).extend(
            (bad, schema.label, expected, found) for bad, expected, found in label_checks
        )
    time = schema.time_column
    if time and time in table.columns and time not in columns:
        columns[time], time_checks, time_notes, rules[time] = _dates(
            table, time, rules.get(time, ""), labeled, numbers=True
        )
        checks += [(bad, time, expected, found) for bad, expected, found in time_checks]
        notes += [(bad, time, expected, found) for bad, expected, found in time_notes]
    typed = pd.DataFrame(columns, index=table.index)
    for column in (schema.group_column, schema.slice_column):
        if column and column in table.columns and column not in typed.columns:
            typed[column] = table[column]
    typed[EXAMPLE_ID], id_checks = _example_ids(table, typed, schema, content_ids)
    checks += [(bad, schema.id_column or EXAMPLE_ID, expected, found) for bad, expected, found in id_checks]
    if labeled:  # what the split keeps together; a night is never split
        typed[DUPLICATE_KEY] = _duplicate_keys(typed, schema, images)
    typed[SOURCE_FILE], typed[SOURCE_ROW] = table[SOURCE_FILE], table[SOURCE_ROW]
    problems, reasons = collect_problems(table, checks)
    problems += collect_problems(table, notes, rejects_rows=False)[0]
    problems += _unread_row_problems(table, reasons)
    problems += _unknown_column_problems(table, schema, labeled, source)
    problems += _header_problems(header_rows)
    rejected = reasons.notna()
    rejects = table[rejected].assign(**{REASON: reasons[rejected]})
    rejects = pd.concat([header_rows, rejects]).sort_index() if len(header_rows) else rejects
    valid = typed[~rejected].reset_index(drop=True)
    kinds = list(schema.kinds)
    shares = valid[kinds].isna().mean() if len(valid) else pd.Series(1.0, index=kinds)
    missing_share = {column: float(shares[column]) for column in kinds}
    problems += [
        Problem(source, column, "some values", "none", (), rejects_rows=False)
        for column, share in missing_share.items()
        if share == 1.0
    ]
    if valid.empty and require_rows:
        raise DataError(f"{source}: no usable rows; first problem: {problems[0].line() if problems else 'none'}")
    decided = dataclasses.replace(schema, date_formats=rules)
    return ValidationResult(valid, rejects.reset_index(drop=True), problems, missing_share, decided)


def unseen_values(valid: pd.DataFrame, preprocessor: Preprocessor) -> list[Problem]:
    """Values a fitted preprocessor never saw, as problems that reject nothing.

    Categories outside the vocabulary are scored through the out-of-vocabulary bucket; a label
    of a labeled batch that is no class of the model is kept (the model cannot predict it).
    """
    outside = "a category in the model's vocabulary (others are scored as out-of-vocabulary)"
    known = {column: (set(vocabulary), outside) for column, vocabulary in preprocessor.categorical.items()}
    if preprocessor.is_classification and preprocessor.label in valid.columns:
        known[preprocessor.label] = (set(preprocessor.classes), "a class the model knows (the row is scored)")
    problems = []
    for column, (values, expected) in known.items():
        unseen = (valid[column].notna() & ~valid[column].astype(str).isin(values)).to_numpy()
        for file, rows in valid[unseen].groupby(SOURCE_FILE, sort=False):
            example = repr(str(rows[column].iloc[0])[:60])
            rows_hit = tuple(int(row) for row in rows[SOURCE_ROW])
            problems.append(Problem(str(file), column, expected, example, rows_hit, rejects_rows=False))
    return problems


def _header_problems(rows: pd.DataFrame) -> list[Problem]:
    return [
        Problem(str(file), "", "a data row", REPEATED_HEADER, tuple(int(r) for r in part[SOURCE_ROW]))
        for file, part in rows.groupby(SOURCE_FILE, sort=False)
    ]


def _dates(table: pd.DataFrame, column: str, rule: str, labeled: bool, *, numbers: bool = False):
    """A date column typed by its rule; (typed, row checks, notes, the rule the values were read by).

    Dates that read two ways stop training data with one line (DataError). In a nightly batch the
    values decide nothing (training did): a feature that reads two ways rejects its row with the
    reason; a time column, which the model never sees, is left empty there with a note.
    """
    values = table[column]
    parse = parse_times if numbers else parse_dates
    expected = "a date or a number" if numbers else "a date"
    try:
        parsed = parse(values, rule, decide=labeled)
    except AmbiguousDates as error:
        if labeled:
            raise _ambiguous(table, column, error) from None
        ambiguous = pd.Series(values.index.isin(error.labels), index=values.index)
        typed = parse(values.where(~ambiguous), rule, decide=False)
        why = f"a date that reads one way (declare [dataset] date_format; {error})"
        unread = [(values.notna() & ~ambiguous & typed.times.isna(), expected, values)]
        if numbers:
            return typed.times, unread, [(ambiguous, why, values)], rule
        return typed.times, [(ambiguous, why, values), *unread], [], rule
    return parsed.times, [(values.notna() & parsed.times.isna(), expected, values)], [], parsed.rule


def _ambiguous(table: pd.DataFrame, column: str, error: AmbiguousDates) -> DataError:
    rows = table.loc[error.labels]
    return DataError(
        f"{rows[SOURCE_FILE].iloc[0]}: column {column!r}: rows {rows_text(rows[SOURCE_ROW].astype(int).tolist())} "
        f"read two ways: {error}; "
        "declare [dataset] date_format = day-first, month-first or a format such as %%d/%%m/%%Y"
    )


def _source_name(table: pd.DataFrame) -> str:
    if table.empty and table.attrs.get("source"):
        return table.attrs["source"]
    files = table[SOURCE_FILE].unique() if SOURCE_FILE in table.columns else []
    return str(files[0]) if len(files) == 1 else f"{len(files)} files"


def require_columns(table: pd.DataFrame, schema: Schema, *, labeled: bool) -> None:
    """DataError naming the missing columns, for tables that may have no rows (a header-only night)."""
    _require_columns(table, schema, labeled, _source_name(table))


def _require_columns(table: pd.DataFrame, schema: Schema, labeled: bool, source: str) -> None:
    # Training data must also carry the configured id, group and time columns: without them
    # the ids, the split and its leakage checks would silently mean something else.
    configured = [c for c in (schema.id_column, schema.group_column, schema.time_column) if c] if labeled else []
    required = list(schema.kinds) + ([schema.label] if labeled else []) + configured
    if EXAMPLE_ID in table.columns and schema.id_column != EXAMPLE_ID:
        # Validation writes each row's id into this column: a supplier's values there would be lost.
        now = f" (it is {schema.id_column!r} now)" if schema.id_column else ""
        raise DataError(
            f"{source}: column {EXAMPLE_ID!r} is where overnight keeps each row's id; set [dataset] "
            f"id_column = {EXAMPLE_ID} if it is the id{now}, or rename it in the file"
        )
    missing = [column for column in required if column not in table.columns]
    if missing:
        present = [c for c in table.columns if c not in (SOURCE_FILE, SOURCE_ROW)]
        what = "label column" if missing == [schema.label] else "columns"
        # At night the file is quarantined and its reason stored and printed: its header is the
        # supplier's content (or, from a wrong file, anything), so it is counted, not quoted.
        has = ", ".join(map(repr, present)) if labeled else f"{len(present)} column{'s' * (len(present) != 1)}"
        has = has if present else "no columns"
        raise DataError(f"{source}: missing {what} {', '.join(map(repr, missing))}; it has {has}")


def _unknown_column_problems(table, schema, labeled, source) -> list[Problem]:
    known = set(schema.kinds) | {
        schema.label,
        schema.id_column,
        schema.group_column,
        schema.time_column,
        schema.slice_column,
        *SOURCE_COLUMNS,
    }
    return [
        Problem(source, column, "no such column (it is ignored)", "", (), rejects_rows=False)
        for column in table.columns
        if column not in known
    ]


def _type_column(values: pd.Series, kind: str, images: ImageRules):
    """Typed values and the row checks (bad-row mask, expectation, found values)."""
    if kind == "numeric":
        return _numbers(values)
    text = values.where(values.isna(), values.astype(str))
    # PostgreSQL cannot store a NUL character in text (SQLite can): one such value would sink the
    # night's load on one database and not the other. A CSV with one is refused whole when read.
    checks = [(_has_nul(text), "text without NUL characters", values)]
    if kind == "image":
        return text, checks + _image_checks(text, images)
    return text, checks


def _has_nul(text: pd.Series) -> pd.Series:
    return text.str.contains("\x00", regex=False).fillna(False).astype(bool)


def _numbers(values: pd.Series, parsed: pd.Series | None = None):
    """Typed values and checks; `parsed`: the values as parse_numbers gives them, when known."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64"), []  # True/False from Parquet: 1.0/0.0
    parsed = parse_numbers(values) if parsed is None else parsed
    numbers = parsed.to_numpy()
    infinite = np.isinf(numbers)
    with np.errstate(invalid="ignore"):
        huge = ~infinite & (np.abs(numbers) > MAX_MAGNITUDE)
    masks = [
        (values.notna().to_numpy() & np.isnan(numbers), "a number"),
        (infinite, "a finite number"),
        (huge, f"a number within ±{MAX_MAGNITUDE:.3g} (float32)"),
    ]
    # Only the checks some row fails: most columns of most files fail none, and a check costs
    # its Series and its pass through collect_problems even when it finds nothing.
    checks = [(pd.Series(mask, index=values.index), expected, values) for mask, expected in masks if mask.any()]
    unusable = infinite | huge
    return (parsed.where(~unusable) if unusable.any() else parsed), checks


def _type_label(values: pd.Series, task: str, required: bool):
    if task == "regression":
        typed, checks = _numbers(values)
    else:
        typed = values.where(values.isna(), values.astype(str).str.strip())
        checks = []
    if required:
        checks.append((typed.isna() & ~_any(checks, values.index), "a label", values))
    return typed, checks


def _any(checks, index) -> pd.Series:
    bad = pd.Series(False, index=index)
    for mask, *_ in checks:
        bad |= mask
    return bad


def _image_checks(paths: pd.Series, images: ImageRules):
    found = {problem: pd.Series(False, index=paths.index) for problem in IMAGE_PROBLEMS}
    for index, path in paths.dropna().items():
        problem = file_problem(path, images.max_bytes, images.root)  # before any read: a FIFO would never end
        if problem is None:
            try:
                check_decodable(path)
            except FileNotFoundError:
                problem = "missing"
            except Image.DecompressionBombError:  # from the header alone: nothing was decoded
                problem = "too many pixels"
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                problem = "unreadable"
        if problem is not None:
            found[problem][index] = True
    # The reason stays short; docs/bad-input.md lists the formats (images.DECODABLE_IMAGES).
    limits = {"size": _bytes_text(images.max_bytes), "pixels": pixel_limit(), "root": images.root}
    return [(found[problem], expected.format(**limits), paths) for problem, expected in IMAGE_PROBLEMS.items()]


def _bytes_text(count: int) -> str:
    """256 MB, 1.5 GB, 1 KB or 700 bytes: a limit as a person sets it (MB are 2**20 bytes)."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if count >= size:
            return f"{count / size:g} {unit}"
    return f"{count} bytes"


def _example_ids(table: pd.DataFrame, typed: pd.DataFrame, schema: Schema, content_ids: bool = True):
    """The id column as text, or a content hash of the row (None without `content_ids`);
    duplicated ids are rejected."""
    if schema.id_column and schema.id_column in table.columns:
        ids = table[schema.id_column].where(table[schema.id_column].isna(), table[schema.id_column].astype(str))
        missing = ids.isna()
        too_long = ids.str.len() > MAX_ID_CHARACTERS
        repeated = ids.duplicated(keep="first") & ~missing
        return ids, [
            (missing, "an id", ids),
            (too_long, f"an id of at most {MAX_ID_CHARACTERS} characters", ids),
            (_has_nul(ids), "an id without NUL characters", ids),
            (repeated, UNIQUE_ID, ids),
        ]
    if not content_ids:
        return pd.Series(None, index=table.index, dtype=object), []
    hashes = row_hashes(typed)
    # Identical rows would share a hash: number the repeats so every example has its own id.
    repeat = hashes.groupby(hashes).cumcount()
    ids = hashes.where(repeat == 0, hashes + "-" + (repeat + 1).astype(str))
    return ids, []


def _duplicate_keys(typed: pd.DataFrame, schema: Schema, images: ImageRules) -> pd.Series:
    features = typed[schema.features].copy()
    for column in schema.columns_of("image"):
        # Two copies of one picture under two names are duplicates: hash the bytes, not the path.
        features[column] = [_content_hash(path, images) for path in features[column]]
    return row_hashes(features)


def _content_hash(path, images: ImageRules) -> str | None:
    if file_problem(path, images.max_bytes, images.root) is not None:
        return None  # rejected by _image_checks, and never read: it might not end
    try:
        return file_sha256(path)
    except (OSError, TypeError):
        return None


def _unread_row_problems(table: pd.DataFrame, reasons: pd.Series) -> list[Problem]:
    """Rows the raw stage could not read whole (too many fields): rejected with its own words.

    Their reason names the line, which differs row by row, so they are not grouped by _collect.
    """
    if SOURCE_PROBLEM not in table.columns or not table[SOURCE_PROBLEM].notna().any():
        return []
    unread = table[SOURCE_PROBLEM].notna()
    for index in table.index[unread]:  # few rows: a loop reads plainest
        own, other = table.at[index, SOURCE_PROBLEM], reasons[index]
        reasons[index] = own if other is None or other != other else f"{own}; {other}"
    return [
        Problem(
            str(file),
            "",
            "as many fields as the header",
            str(rows[SOURCE_PROBLEM].iloc[0])[:100],
            tuple(int(r) for r in rows[SOURCE_ROW]),
        )
        for file, rows in table[unread].groupby(SOURCE_FILE, sort=False)
    ]
