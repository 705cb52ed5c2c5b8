"""Schema inference: which columns are features, of which kind, and which is the label (the contract
itself, DatasetConfig and Schema, is pipeline/stages/contract.py)."""

from __future__ import annotations

import logging
import re

import pandas as pd

from pipeline.common.columns import IMAGE_GROUP_COLUMN, IMAGE_ID_COLUMN, IMAGE_PATH_COLUMN, SOURCE_COLUMNS, SOURCE_FILE
from pipeline.errors import DataError
from pipeline.stages.contract import KINDS, DatasetConfig, Schema, parse_kinds, parse_missing_values  # noqa: F401 - importable from here, as before the split
from pipeline.stages.data_files import IMAGE_EXTENSIONS
from pipeline.stages.dates import looks_like_dates

logger = logging.getLogger(__name__)

# Inference thresholds: a column is numeric when nearly all its values parse as numbers, so a
# few typos are reported as bad rows instead of turning the column into a categorical.
NUMERIC_SHARE = 0.95
IMAGE_SHARE = 0.95
TEXT_MEAN_WORDS = 4.0  # free text has sentences; categoricals have a word or two
# Short free text (job titles, product names): words, mostly rare as whole values. As categories
# they are a vocabulary of values seen once or twice (4,741 titles in 10,000 rows overfit at once);
# as text, the words they share ("manager", "senior") are learned. A column inferred categorical
# is read as text when all three hold (`reads_as_short_text`):
SHORT_TEXT_MIN_DISTINCT = 100  # more distinct values than this,
SHORT_TEXT_DISTINCT_SHARE = 0.2  # at least this share of the present values (five rows a value or fewer),
SHORT_TEXT_MEAN_WORDS = 1.5  # and this many words a value on average: one-word names stay categories
# Comma thousands separators in strict groups of three (1,234 and 12,345,678.9): what spreadsheets
# write. A decimal comma (1,5) does not match, so it is never read as 15.
THOUSANDS = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"
ID_MIN_ROWS = 20  # fewer rows may differ in every row by chance
ID_WORDS = frozenset({"id", "ids", "uuid", "guid", "key", "index", "idx", "pk"})  # words of a name that says id


def infer_schema(table: pd.DataFrame, config: DatasetConfig) -> Schema:
    """Kinds of every feature column: config first, then inferred from the values."""
    reserved = {
        config.label,
        config.id_column,
        config.group_column,
        config.time_column,
        IMAGE_ID_COLUMN,
        IMAGE_GROUP_COLUMN if config.group_pattern else "",
        *SOURCE_COLUMNS,
    }
    _require_configured(table, config)
    table = table[~repeated_headers(table)]  # files joined with `cat`: the header is no value
    features = [column for column in table.columns if column not in reserved]
    kinds = {column: config.kinds.get(column) or infer_kind(table[column]) for column in features}
    for column in [c for c, kind in kinds.items() if c not in config.kinds and looks_like_an_id(table[c], c, kind)]:
        logger.warning(
            "column %r looks like an id (a different value in every one of %d rows): not used as a feature; "
            "name it [dataset] id_column, or declare its kind in [dataset] kinds to use it",
            column,
            len(table),
        )
        del kinds[column]
    # After the id rule: a column of distinct names in every row is an id, not text.
    for column in [c for c, kind in kinds.items() if c not in config.kinds and kind == "categorical"]:
        if reads_as_short_text(table[column]):
            distinct, present, words = _word_profile(table[column])
            logger.warning(
                "column %r reads as short text, not categories: %d distinct values in %d rows, %.1f words each; "
                "inferred text, so the words its values share are learned; declare its kind in [dataset] kinds "
                "to keep it categorical",
                column,
                distinct,
                present,
                words,
            )
            kinds[column] = "text"
    id_column = config.id_column or (IMAGE_ID_COLUMN if IMAGE_ID_COLUMN in table.columns else "")
    dated = [column for column, kind in kinds.items() if kind == "datetime"]
    return Schema(
        label=config.label,
        task=config.task,
        kinds=kinds,
        id_column=id_column,
        group_column=IMAGE_GROUP_COLUMN if config.group_pattern else config.group_column,
        time_column=config.time_column,
        slice_column=config.slice_column,
        date_formats=dict.fromkeys([*dated, *filter(None, [config.time_column])], config.date_format),
        missing_values=config.missing_values,
    )


def repeated_headers(table: pd.DataFrame) -> pd.Series:
    """Rows that repeat the header (files joined with `cat`): every value is its column's name."""
    named = [column for column in table.columns if column not in SOURCE_COLUMNS]
    mask = pd.Series(bool(named), index=table.index)
    for column in named:
        if not mask.any():  # the usual case after the first column: no row can still repeat it
            break
        # A byte-order mark the reader kept on the first column's name is not in the repeat.
        name = str(column).lstrip("\ufeff")
        mask &= table[column].astype(str).str.strip().str.lstrip("\ufeff").eq(name).to_numpy()
    return mask


def _require_configured(table: pd.DataFrame, config: DatasetConfig) -> None:
    if IMAGE_PATH_COLUMN in table.columns and config.group_column and config.group_column not in table.columns:
        raise DataError(
            f"{config.path}: an image folder has no column {config.group_column!r} to group by; "
            "set [dataset] group_pattern to a regular expression that finds each file's group in its name"
        )
    # A column named in [dataset] kinds but absent would otherwise just not be a feature.
    missing = [column for column in config.kinds if column not in table.columns]
    if missing:
        files = table[SOURCE_FILE].unique() if SOURCE_FILE in table.columns else []
        source = str(files[0]) if len(files) == 1 else config.path
        present = [column for column in table.columns if column not in SOURCE_COLUMNS]
        raise DataError(
            f"{source}: missing columns {', '.join(map(repr, missing))} (named in [dataset] kinds); "
            f"it has {', '.join(map(repr, present)) or 'no columns'}"
        )


def parse_numbers(values: pd.Series) -> pd.Series:
    """Text as float64: surrounding spaces ignored, 1,234 read as 1234; NaN where it is no number."""
    fast = _plain_numbers(values)
    if fast is not None:
        return fast
    text = values.astype(str).str.strip()
    text = text.where(~text.str.fullmatch(THOUSANDS), text.str.replace(",", "", regex=False))
    return pd.to_numeric(text.where(values.notna()), errors="coerce").astype("float64")


def _plain_numbers(values: pd.Series) -> pd.Series | None:
    """The column as float64 when every value is already a plain number (the common case), by
    Arrow's parser: ten times faster than the text path, and the same values (Arrow and pandas
    both round a decimal correctly; -0 becomes 0 as pandas has it). None: take the text path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64") + 0.0
    try:
        array = pa.array(values, from_pandas=True)
        # Text, or numbers in an object column (a JSON request's); anything else takes the text path.
        kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_floating)
        if not any(kind(array.type) for kind in kinds):
            return None
        parsed = pc.cast(array, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None  # a space, a thousands separator, a word, a JSON integer beyond int64: the text path decides
    return pd.Series(parsed.to_numpy(zero_copy_only=False) + 0.0, index=values.index, name=values.name)


NUMBER_BLOCK_ROWS = 1_000  # a block's values are looked at one by one: a request's rows, not a night's


def plain_number_block(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Several columns as float64 at once when every value is already a number or missing (a JSON
    request's rows): the values parse_numbers gives column by column, at a fraction of its fixed
    cost per column. None (take parse_numbers): text, a bool, or more rows than a request has."""
    import numpy as np

    if frame.empty or len(frame) > NUMBER_BLOCK_ROWS:
        return None
    values = frame.to_numpy(dtype=object)
    if not all(value is None or type(value) in (int, float) for value in values.flat):
        return None
    return pd.DataFrame(np.array(values, dtype="float64") + 0.0, index=frame.index, columns=frame.columns)


def looks_like_an_id(values: pd.Series, name: str, kind: str) -> bool:
    """A column a person reads as an id: a different value in every row (of at least ID_MIN_ROWS),
    and either words that are no category (a category seen once teaches nothing), or whole
    numbers that count the rows under no name (pandas' exported index) or sit under a name that
    says id (`id`, `user_id`, `orderKey`, `id_str`). Measured numbers that differ in every row
    (a weight, a price) are kept."""
    if len(values) < ID_MIN_ROWS or values.isna().any() or kind not in ("categorical", "numeric"):
        return False
    text = values.astype(str).str.strip()
    if text.nunique() != len(values):
        return False
    if kind == "categorical":
        return True
    numbers = parse_numbers(text)
    if not (numbers.notna().all() and (numbers == numbers.round()).all()):
        return False
    # pandas' exported index: "Unnamed: 0" counting 0, 1, 2 ... (a year column counting up stays).
    unnamed = name.strip() == "" or name.lower().startswith("unnamed")
    if unnamed and (numbers.sort_values().diff().dropna() == 1).all():
        return True
    words = re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower())
    return bool(ID_WORDS & set(words))


def reads_as_short_text(values: pd.Series) -> bool:
    """Words that are rare as whole values: more than SHORT_TEXT_MIN_DISTINCT distinct values, at
    least SHORT_TEXT_DISTINCT_SHARE of the present ones, SHORT_TEXT_MEAN_WORDS words or more each
    on average (see the constants)."""
    distinct, present, words = _word_profile(values)
    return (
        distinct > SHORT_TEXT_MIN_DISTINCT
        and distinct >= SHORT_TEXT_DISTINCT_SHARE * present
        and words >= SHORT_TEXT_MEAN_WORDS
    )


def _word_profile(values: pd.Series) -> tuple[int, int, float]:
    """(distinct values, present values, mean words a value) of a column's non-missing values."""
    text = values.dropna().astype(str).str.strip()
    if text.empty:
        return 0, 0, 0.0
    return text.nunique(), len(text), float(text.str.split().str.len().mean())


def infer_kind(values: pd.Series) -> str:
    """numeric, image, datetime, text or categorical, from the non-missing values of one column."""
    present = values.dropna()
    if present.empty or pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "numeric"
    text = present.astype(str).str.strip()
    if parse_numbers(text).notna().mean() >= NUMERIC_SHARE:
        return "numeric"
    if text.str.lower().str.endswith(IMAGE_EXTENSIONS).mean() >= IMAGE_SHARE:
        return "image"
    if looks_like_dates(text):
        return "datetime"
    if text.str.split().str.len().mean() >= TEXT_MEAN_WORDS:
        return "text"
    return "categorical"
