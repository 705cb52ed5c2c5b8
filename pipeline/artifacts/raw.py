"""01_raw/<version>/: the snapshot of every raw row, its schema and what the data set is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.artifacts.folder import StageFolder, read_json, write_json
from pipeline.stages.contract import Schema

if TYPE_CHECKING:  # loaded by the functions that need it: `import tasks` stays light
    import pandas as pd

SNAPSHOT = "snapshot.parquet"  # every raw row as read, with its source file and row
SCHEMA = "schema.json"
DATASET = "dataset.json"  # data version, path, fingerprint, rows, columns


class Snapshot(StageFolder):
    FILES = (SNAPSHOT, SCHEMA, DATASET)

    def table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.file(SNAPSHOT))

    def schema(self) -> Schema:
        return Schema.from_dict(read_json(self.file(SCHEMA)))

    def dataset(self) -> dict:
        return read_json(self.file(DATASET))

    def write(self, table: pd.DataFrame, schema: Schema, dataset: dict) -> None:
        table.to_parquet(self.path / SNAPSHOT, index=False)
        write_json(self.path / SCHEMA, schema.as_dict())
        write_json(self.path / DATASET, dataset)
