"""Features stage: preprocessing fitted on the training split, every split transformed."""

from __future__ import annotations

import luigi

from pipeline.artifacts.features import FeatureArrays
from pipeline.artifacts.split import SplitManifest
from pipeline.artifacts.validation import ValidatedData
from pipeline.stages.settings import (
    DEFAULT_BACKGROUND,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_SIDE,
    check_image_limit,
    parse_background,
)
from tasks.base import Outcome, StageTask
from tasks.split import SplitData
from tasks.validation import ValidateData


class FitPreprocessor(StageTask):
    stage = "features"
    artifact = FeatureArrays

    max_vocabulary = luigi.IntParameter(default=20_000)
    max_text_length = luigi.IntParameter(default=256)
    image_size = luigi.Parameter(
        default="", description="HEIGHTxWIDTH; empty: the median training image's, scaled down to max_image_side"
    )
    max_image_side = luigi.IntParameter(
        default=MAX_IMAGE_SIDE, description="the longest side of an image input chosen from the data, in pixels"
    )
    # Validation applies it (ValidateData, and BatchPredict at night), and versions its output by it.
    max_image_bytes = luigi.IntParameter(
        default=MAX_IMAGE_BYTES, significant=False, description="larger image files are rejected unread"
    )
    image_background = luigi.Parameter(
        default=DEFAULT_BACKGROUND, description="what transparent pixels are composited onto: a name or #rrggbb"
    )

    def requires(self):
        return {"validated": ValidateData(), "split": SplitData()}

    def build(self, out: FeatureArrays) -> Outcome:
        # NumPy, pandas and scipy load here, when the stage runs: checking that it is complete stays fast.
        from pipeline.stages import features
        from pipeline.stages.profiles import reference_profile
        from pipeline.stages.seasons import CALENDAR, calendar_sample
        from pipeline.stages.within_dates import WITHIN_DATES, within_dates_profile

        validated: ValidatedData = self.inputs()["validated"]
        manifest: SplitManifest = self.inputs()["split"]
        background = parse_background(self.image_background)
        parts = manifest.parts(validated.table())
        preprocessor = features.fit(
            parts["train"],
            validated.schema(),
            max_vocabulary=self.max_vocabulary,
            max_text_length=self.max_text_length,
            image_size=_size(self.image_size),
            image_background=background,
            max_image_side=check_image_limit("max_image_side", self.max_image_side),
        )
        reference = reference_profile(parts["train"], preprocessor.schema, background=background)
        # The training rows by day of the year, for `[MonitorDrift] reference = calendar`.
        sample = calendar_sample(parts["train"], preprocessor.schema, background=background)
        if sample:
            reference[CALENDAR] = sample
        # Each feature's values and whether a date holds one of them, for `[MonitorDrift] policies`.
        reference[WITHIN_DATES] = within_dates_profile(parts["train"], preprocessor.schema)
        out.write_fitted(preprocessor, reference)
        for done, (name, part) in enumerate(parts.items(), start=1):
            out.write_arrays(name, features.split_arrays(part, preprocessor))
            self.progress(done, len(parts), f"transformed {name}")
        return Outcome()


def _size(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    height, _, width = text.lower().partition("x")
    return int(height), int(width)
