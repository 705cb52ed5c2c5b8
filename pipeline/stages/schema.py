"""The dataset contract: which columns are features, of which kind, and which is the label."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from models.spec import KINDS as INPUT_KINDS
from pipeline.common.columns import IMAGE_GROUP_COLUMN, IMAGE_ID_COLUMN, IMAGE_PATH_COLUMN, SOURCE_COLUMNS, SOURCE_FILE
from pipeline.errors import DataError
from pipeline.stages.dates import check_rule, looks_like_dates

TASKS = ("classification", "regression")
ADDED_FIELDS = ("date_formats", "missing_values")  # Schema fields older schema.json files lack
# A date column is no model input of its own: its parts join the numeric input.
KINDS = (*INPUT_KINDS, "datetime")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

# Inference thresholds: a column is numeric when nearly all its values parse as numbers, so a
# few typos are reported as bad rows instead of turning the column into a categorical.
NUMERIC_SHARE = 0.95
IMAGE_SHARE = 0.95
TEXT_MEAN_WORDS = 4.0  # free text has sentences; categoricals have a word or two
# Comma thousands separators in strict groups of three (1,234 and 12,345,678.9): what spreadsheets
# write. A decimal comma (1,5) does not match, so it is never read as 15.
THOUSANDS = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"


@dataclass(frozen=True)
class DatasetConfig:
    """What `[dataset]` in luigi.cfg says about the data."""

    path: str
    label: str
    task: str = "classification"
    id_column: str = ""
    group_column: str = ""
    time_column: str = ""
    slice_column: str = ""
    kinds: dict[str, str] = field(default_factory=dict)  # column -> kind, overrides inference
    include_feedback: bool = False  # add nightly examples whose late labels arrived
    date_format: str = ""  # day-first, month-first or a strftime format; empty: the values decide
    missing_values: tuple[str, ...] = ()  # cell texts that mean "no value", besides the usual ones
    group_pattern: str = ""  # image folders: a regular expression whose match in a file name is its group

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"[dataset] task must be one of {', '.join(TASKS)}, not {self.task!r}")
        check_rule(self.date_format)
        if self.group_pattern and self.group_column:
            raise ValueError(
                "[dataset] set group_column (a table's column) or group_pattern (an image folder's), not both"
            )
        for column, kind in self.kinds.items():
            if kind not in KINDS:
                raise ValueError(f"[dataset] kinds: {column} has kind {kind!r}; choose one of {', '.join(KINDS)}")

    def as_dict(self) -> dict:
        """Plain JSON values (lists, not tuples): what a recorded run's parameters compare with."""
        return {**asdict(self), "missing_values": list(self.missing_values)}


@dataclass(frozen=True)
class Schema:
    """The training data's shape, saved with the snapshot and enforced on every later batch."""

    label: str
    task: str
    kinds: dict[str, str]  # feature column -> kind, in column order
    id_column: str = ""
    group_column: str = ""
    time_column: str = ""
    slice_column: str = ""
    # The rule each date column (the time column, datetime features) is read by: declared in
    # [dataset] date_format, or decided by the training values (pipeline/stages/dates.py).
    date_formats: dict[str, str] = field(default_factory=dict)
    missing_values: tuple[str, ...] = ()  # [dataset] missing_values: nights are read the same way

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    def columns_of(self, kind: str) -> list[str]:
        return [column for column, column_kind in self.kinds.items() if column_kind == kind]

    def as_dict(self) -> dict:
        """Plain JSON; fields added since 0.1 only when set, so an older schema writes back as it was."""
        document = asdict(self)
        for name in ADDED_FIELDS:
            if not document[name]:
                del document[name]
        if "missing_values" in document:
            document["missing_values"] = list(document["missing_values"])
        return document

    @classmethod
    def from_dict(cls, data: dict) -> Schema:
        return cls(**{**data, "missing_values": tuple(data.get("missing_values", ()))})


def parse_kinds(text: str) -> dict[str, str]:
    """Parse `island:categorical, year:numeric` into a dict; raises ValueError on a bad entry."""
    kinds = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        column, separator, kind = entry.rpartition(":")
        if not separator or not column.strip():
            raise ValueError(f"[dataset] kinds: {entry!r} is not column:kind")
        kinds[column.strip()] = kind.strip()
    return kinds


def parse_missing_values(text: str) -> tuple[str, ...]:
    """`-, ?, n.a.` as ("-", "?", "n.a."): each compared with a cell's text, spaces stripped."""
    return tuple(dict.fromkeys(filter(None, (part.strip() for part in text.split(",")))))


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
            f"the file has {', '.join(map(repr, present)) or 'no columns'}"
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
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            return None
        parsed = pc.cast(array, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None  # a space, a thousands separator, a word: the text path decides
    return pd.Series(parsed.to_numpy(zero_copy_only=False) + 0.0, index=values.index, name=values.name)


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
