"""Validation stage: typed valid rows, a rejects file with reasons, a report of every problem."""

from __future__ import annotations

import logging

from pipeline.artifacts.raw import Snapshot
from pipeline.artifacts.validation import ValidatedData
from pipeline.stages.validation import validate
from tasks.base import Outcome, StageTask
from tasks.raw import IngestData

logger = logging.getLogger(__name__)


class ValidateData(StageTask):
    stage = "validation"
    artifact = ValidatedData

    def requires(self):
        return {"snapshot": IngestData()}

    def build(self, out: ValidatedData) -> Outcome:
        snapshot: Snapshot = self.inputs()["snapshot"]
        schema = snapshot.schema()
        result = validate(snapshot.table(), schema)
        for problem in result.problems:
            logger.warning("%s", problem.line())
        out.write(result, schema)
        rows_in, rejected = len(result.valid) + len(result.rejects), len(result.rejects)
        if rejected:
            final = ValidatedData(self.output().path)
            logger.warning("%d of %d rows rejected; reasons in %s", rejected, rows_in, final.rejects_path)
        return Outcome(rows_in=rows_in, rows_rejected=rejected)
