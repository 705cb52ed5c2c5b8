"""Split stage: a leak-free train/validation/test manifest and the checks that prove it."""

from __future__ import annotations

from pathlib import Path

import luigi
import pandas as pd

from pipeline.common.metrics import Metric
from pipeline.stages.schema import Schema
from pipeline.stages.split import SplitConfig, split
from tasks.base import Outcome, StageTask, read_json, write_json
from tasks.raw import SCHEMA
from tasks.validation import VALID, ValidateData

MANIFEST = "manifest.parquet"
CHECKS = "checks.json"


class SplitData(StageTask):
    folder = "03_split"
    code = ("pipeline/stages/split.py",)
    expected_files = (MANIFEST, CHECKS)

    validation_fraction = luigi.FloatParameter(default=0.1)
    test_fraction = luigi.FloatParameter(default=0.2)
    seed = luigi.IntParameter(default=42)

    def requires(self):
        return ValidateData()

    def build(self, out_dir: Path) -> Outcome:
        validated = self.input_dir()
        schema = Schema.from_dict(read_json(validated / SCHEMA))
        config = SplitConfig(self.validation_fraction, self.test_fraction, self.seed)
        manifest, checks = split(
            pd.read_parquet(validated / VALID),
            label=schema.label,
            task=schema.task,
            config=config,
            group_column=schema.group_column,
            time_column=schema.time_column,
        )
        manifest.to_parquet(out_dir / MANIFEST, index=False)
        write_json(out_dir / CHECKS, checks)
        return Outcome(metrics=[Metric("rows", count, split=name) for name, count in checks["rows"].items()])
