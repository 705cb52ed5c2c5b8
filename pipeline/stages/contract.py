"""The dataset contract: what `[dataset]` says (DatasetConfig) and the training data's shape
(Schema). No pandas here: settings are checked and outputs found complete without loading it;
pipeline/stages/schema.py infers a schema from the data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from models.spec import KINDS as INPUT_KINDS
from pipeline.stages.settings import check_rule

TASKS = ("classification", "regression")
ADDED_FIELDS = ("date_formats", "missing_values")  # Schema fields older schema.json files lack
# A date column is no model input of its own: its parts join the numeric input.
KINDS = (*INPUT_KINDS, "datetime")


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
    image_root: str = ""  # every image must lie in this folder (links resolved); empty: anywhere

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
        """Plain JSON values (lists, not tuples): what a recorded run's parameters compare with.
        image_root only when set: data sets that never set it keep the versions they had."""
        document = {**asdict(self), "missing_values": list(self.missing_values)}
        if not self.image_root:
            del document["image_root"]
        return document


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
