"""Validation stage: typed valid rows, a rejects file with reasons, a report of every problem."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline.stages.schema import Schema
from pipeline.stages.validation import validate
from tasks.base import Outcome, StageTask, read_json, write_json
from tasks.raw import SCHEMA, SNAPSHOT, IngestData

logger = logging.getLogger(__name__)

VALID = "valid.parquet"
REJECTS = "rejects.csv"
REPORT = "report.json"


class ValidateData(StageTask):
    folder = "02_validation"
    code = ("pipeline/stages/validation.py",)
    expected_files = (VALID, REJECTS, REPORT, SCHEMA)

    def requires(self):
        return IngestData()

    def build(self, out_dir: Path) -> Outcome:
        snapshot = self.input_dir()
        schema = Schema.from_dict(read_json(snapshot / SCHEMA))
        result = validate(pd.read_parquet(snapshot / SNAPSHOT), schema)
        for problem in result.problems:
            logger.warning("%s", problem.line())
        result.valid.to_parquet(out_dir / VALID, index=False)
        result.rejects.to_csv(out_dir / REJECTS, index=False)
        write_json(out_dir / REPORT, result.report())
        write_json(out_dir / SCHEMA, schema.as_dict())
        if len(result.rejects):
            logger.warning(
                "%d of %d rows rejected; reasons in %s",
                len(result.rejects),
                len(result.rejects) + len(result.valid),
                self.output().path + "/" + REJECTS,
            )
        return Outcome(rows_in=len(result.valid) + len(result.rejects), rows_rejected=len(result.rejects))
