"""Split stage: a leak-free train/validation/test manifest and the checks that prove it."""

from __future__ import annotations

import luigi

from pipeline.artifacts.split import SplitManifest
from pipeline.artifacts.validation import ValidatedData
from pipeline.common.metrics import Metric
from pipeline.stages.split import SplitConfig, split
from tasks.base import Outcome, StageTask
from tasks.validation import ValidateData


class SplitData(StageTask):
    stage = "split"
    artifact = SplitManifest

    validation_fraction = luigi.FloatParameter(default=0.1)
    test_fraction = luigi.FloatParameter(default=0.2)
    seed = luigi.IntParameter(default=42)

    def requires(self):
        return {"validated": ValidateData()}

    def build(self, out: SplitManifest) -> Outcome:
        validated: ValidatedData = self.inputs()["validated"]
        schema = validated.schema()
        manifest, checks = split(
            validated.table(),
            label=schema.label,
            task=schema.task,
            config=SplitConfig(self.validation_fraction, self.test_fraction, self.seed),
            group_column=schema.group_column,
            time_column=schema.time_column,
        )
        out.write(manifest, checks)
        return Outcome(metrics=[Metric("rows", count, split=name) for name, count in checks["rows"].items()])
