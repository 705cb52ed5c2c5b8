"""Split stage: a leak-free train/validation/test manifest, the checks that prove it, and warnings."""

from __future__ import annotations

import logging

import luigi

from pipeline.artifacts.split import SplitManifest
from pipeline.artifacts.validation import ValidatedData
from pipeline.common.metrics import Metric
from pipeline.stages.settings import DEFAULT_THRESHOLD
from tasks.base import Outcome, StageTask
from tasks.validation import ValidateData

logger = logging.getLogger(__name__)


class SplitData(StageTask):
    """Split the valid rows into training, validation and test sets, keeping groups and duplicates together."""

    stage = "split"
    artifact = SplitManifest

    validation_fraction = luigi.FloatParameter(default=0.1, description="share of the examples held out for validation")
    test_fraction = luigi.FloatParameter(default=0.2, description="share of the examples held out for the test")
    seed = luigi.IntParameter(default=42, description="seed of the random split")
    near_duplicate_threshold = luigi.IntParameter(
        default=DEFAULT_THRESHOLD,
        description="images whose perceptual hashes differ in fewer bits (of 64) are one example, like texts equal "
        "once normalised; 0 keeps them apart (counted, with a warning)",
    )

    def requires(self):
        return {"validated": ValidateData()}

    def build(self, out: SplitManifest) -> Outcome:
        # NumPy and pandas load here, when the stage runs: checking that it is complete stays fast.
        from pipeline.stages.near_duplicates import near_groups
        from pipeline.stages.split import SplitConfig, split

        validated: ValidatedData = self.inputs()["validated"]
        schema, table = validated.schema(), validated.table()
        config = SplitConfig(
            self.validation_fraction, self.test_fraction, self.seed, True, self.near_duplicate_threshold
        )
        # Found even when off (threshold 0): the warning says how many groups straddle.
        near = near_groups(table, schema, self.near_duplicate_threshold or DEFAULT_THRESHOLD)
        manifest, checks = split(
            table,
            label=schema.label,
            task=schema.task,
            config=config,
            group_column=schema.group_column,
            time_column=schema.time_column,
            near=near,
        )
        found = checks["near_duplicates"]
        if found["groups"]:
            logger.info(
                "%d groups of near-duplicates cover %d examples; %s",
                found["groups"],
                found["examples"],
                "each kept in one split" if found["kept_together"] else f"{found['straddling']} straddle the splits",
            )
        for warning in checks["warnings"]:
            logger.warning("split: %s", warning)
        out.write(manifest, checks)
        return Outcome(metrics=[Metric("rows", count, split=name) for name, count in checks["rows"].items()])
