"""Validation stage: typed valid rows, a rejects file with reasons, a report of every problem."""

from __future__ import annotations

import logging

from pipeline.artifacts.raw import Snapshot
from pipeline.artifacts.validation import ValidatedData
from pipeline.stages.settings import check_image_limit, parse_background
from tasks.base import Outcome, StageTask
from tasks.config import dataset_config
from tasks.raw import IngestData

logger = logging.getLogger(__name__)


class ValidateData(StageTask):
    stage = "validation"
    artifact = ValidatedData

    def requires(self):
        return {"snapshot": IngestData()}

    def identity(self) -> dict:
        # Images are surveyed (blank, near-duplicate hashes) as the model will see them; the limit
        # on their files decides which rows are rejected.
        return {"image_background": image_background(), "max_image_bytes": max_image_bytes(), **image_root()}

    def build(self, out: ValidatedData) -> Outcome:
        # pandas and the decoder load here, when the stage runs: checking that it is complete stays fast.
        from pipeline.stages.near_duplicates import survey
        from pipeline.stages.validation import validate

        snapshot: Snapshot = self.inputs()["snapshot"]
        result = validate(
            snapshot.table(),
            snapshot.schema(),
            max_image_bytes=max_image_bytes(),
            image_root=dataset_config().image_root,
        )
        found = survey(
            result.valid, result.schema, background=parse_background(image_background()), source=dataset_config().path
        )
        result.valid = result.valid.join(found.keys)
        result.warnings += found.warnings
        for column, unreadable in found.unreadable.items():
            result.reject(unreadable, column, "an image that decodes whole")
        for problem in result.problems:
            logger.warning("%s", problem.line())
        for warning in result.warnings:
            logger.warning("%s", warning)
        out.write(result, result.schema)
        rows_in, rejected = len(result.valid) + len(result.rejects), len(result.rejects)
        if rejected:
            final = ValidatedData(self.output().path)
            logger.warning("%d of %d rows rejected; reasons in %s", rejected, rows_in, final.rejects_path)
        return Outcome(rows_in=rows_in, rows_rejected=rejected)


def image_background() -> str:
    """[FitPreprocessor] image_background, as the features stage will read it (command line included)."""
    from tasks.features import FitPreprocessor  # the features stage requires this one

    return FitPreprocessor().image_background


def max_image_bytes() -> int:
    """[FitPreprocessor] max_image_bytes, checked: training data and nights are validated alike."""
    from tasks.features import FitPreprocessor

    return check_image_limit("max_image_bytes", FitPreprocessor().max_image_bytes)


def image_root() -> dict:
    """[dataset] image_root for a version, only when set: other data sets keep their versions."""
    root = dataset_config().image_root
    return {"image_root": root} if root else {}
