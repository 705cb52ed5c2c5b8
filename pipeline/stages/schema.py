"""The dataset contract: which columns are features, of which kind, and which is the label."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from models.spec import KINDS
from pipeline.common.columns import IMAGE_ID_COLUMN, SOURCE_COLUMNS, SOURCE_FILE
from pipeline.errors import DataError

TASKS = ("classification", "regression")
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

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"[dataset] task must be one of {', '.join(TASKS)}, not {self.task!r}")
        for column, kind in self.kinds.items():
            if kind not in KINDS:
                raise ValueError(f"[dataset] kinds: {column} has kind {kind!r}; choose one of {', '.join(KINDS)}")

    def as_dict(self) -> dict:
        return asdict(self)


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

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    def columns_of(self, kind: str) -> list[str]:
        return [column for column, column_kind in self.kinds.items() if column_kind == kind]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Schema:
        return cls(**data)


def parse_kinds(text: str) -> dict[str, str]:
    """Parse `island:categorical, year:numeric` into a dict; raises ValueError on a bad entry."""
    kinds = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        column, separator, kind = entry.rpartition(":")
        if not separator or not column.strip():
            raise ValueError(f"[dataset] kinds: {entry!r} is not column:kind")
        kinds[column.strip()] = kind.strip()
    return kinds


def infer_schema(table: pd.DataFrame, config: DatasetConfig) -> Schema:
    """Kinds of every feature column: config first, then inferred from the values."""
    reserved = {
        config.label,
        config.id_column,
        config.group_column,
        config.time_column,
        IMAGE_ID_COLUMN,
        *SOURCE_COLUMNS,
    }
    _require_configured(table, config)
    features = [column for column in table.columns if column not in reserved]
    kinds = {column: config.kinds.get(column) or infer_kind(table[column]) for column in features}
    id_column = config.id_column or (IMAGE_ID_COLUMN if IMAGE_ID_COLUMN in table.columns else "")
    return Schema(
        label=config.label,
        task=config.task,
        kinds=kinds,
        id_column=id_column,
        group_column=config.group_column,
        time_column=config.time_column,
        slice_column=config.slice_column,
    )


def _require_configured(table: pd.DataFrame, config: DatasetConfig) -> None:
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
    text = values.astype(str).str.strip()
    text = text.where(~text.str.fullmatch(THOUSANDS), text.str.replace(",", "", regex=False))
    return pd.to_numeric(text.where(values.notna()), errors="coerce").astype("float64")


def infer_kind(values: pd.Series) -> str:
    """numeric, image, text or categorical, from the non-missing values of one column."""
    present = values.dropna()
    if present.empty or pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "numeric"
    text = present.astype(str).str.strip()
    if parse_numbers(text).notna().mean() >= NUMERIC_SHARE:
        return "numeric"
    if text.str.lower().str.endswith(IMAGE_EXTENSIONS).mean() >= IMAGE_SHARE:
        return "image"
    if text.str.split().str.len().mean() >= TEXT_MEAN_WORDS:
        return "text"
    return "categorical"
