"""02_validation/<version>/: typed valid rows, rejected rows with reasons, every problem."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.artifacts.folder import StageFolder, read_json, write_json
from pipeline.stages.contract import Schema

if TYPE_CHECKING:  # loaded by the functions that need it: `import tasks` stays light
    import pandas as pd

if TYPE_CHECKING:  # the stage module loads scikit-learn or Pillow: only to run a stage
    from pipeline.stages.validation import ValidationResult

VALID = "valid.parquet"  # typed columns, example_id, duplicate_key, source file and row
REJECTS = "rejects.csv"  # the rejected rows as read, and their reason
REPORT = "report.json"  # every problem: file, column, rows, expectation
SCHEMA = "schema.json"


class ValidatedData(StageFolder):
    FILES = (VALID, REJECTS, REPORT, SCHEMA)

    def table(self, columns: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.file(VALID), columns=columns)

    def schema(self) -> Schema:
        return Schema.from_dict(read_json(self.file(SCHEMA)))

    @property
    def rejects_path(self):
        return self.path / REJECTS

    def write(self, result: ValidationResult, schema: Schema) -> None:
        result.valid.to_parquet(self.path / VALID, index=False)
        result.rejects.to_csv(self.path / REJECTS, index=False)
        write_json(self.path / REPORT, result.report())
        write_json(self.path / SCHEMA, schema.as_dict())
