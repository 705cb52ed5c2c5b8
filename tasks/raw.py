"""Raw stage: a versioned snapshot of the configured data set."""
from __future__ import annotations

from pathlib import Path

import luigi

from pipeline import ledger, raw
from pipeline.schema import infer_schema
from tasks import recording
from tasks.base import Outcome, StageTask, write_json
from tasks.config import data_root, dataset_config

SNAPSHOT = "snapshot.parquet"
SCHEMA = "schema.json"
DATASET = "dataset.json"


class IngestData(StageTask):
    """Read the raw files into one table; infer the schema. Its version is the data version."""

    folder = "01_raw"
    code = ("pipeline/raw.py", "pipeline/schema.py")
    expected_files = (SNAPSHOT, SCHEMA, DATASET)

    def identity(self) -> dict:
        config = dataset_config()
        return {"dataset": config.as_dict(), "fingerprint": self.fingerprint()}

    def fingerprint(self) -> str:
        if not hasattr(self, "_fingerprint"):
            self._fingerprint = raw.fingerprint(dataset_config().path, data_root() / ".cache" / "fingerprints.json")
        return self._fingerprint

    @property
    def data_version(self) -> str:
        return self.version

    def build(self, out_dir: Path) -> Outcome:
        config = dataset_config()
        table = raw.read_raw(config.path, config.label)
        schema = infer_schema(table, config)
        table.to_parquet(out_dir / SNAPSHOT, index=False)
        columns = [c for c in table.columns if not c.startswith("_")]
        write_json(out_dir / SCHEMA, schema.as_dict())
        write_json(out_dir / DATASET, {"data_version": self.version, "path": config.path,
                                       "fingerprint": self.fingerprint(), "rows": len(table), "columns": columns})
        ledger.record_dataset(recording.engine(), data_version=self.version, path=config.path,
                              fingerprint=self.fingerprint(), rows=len(table), columns=columns,
                              schema=schema.kinds)
        return Outcome(rows_in=len(table))
