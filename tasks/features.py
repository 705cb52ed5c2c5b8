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
    """Fit the preprocessing (scaling, vocabularies, image size) on the training split and encode every split."""

    stage = "features"
    artifact = FeatureArrays

    max_vocabulary = luigi.IntParameter(
        default=20_000,
        description="the most frequent categories of a categorical column, and words of a text column, kept; "
        "the rest share one out-of-vocabulary id",
    )
    max_text_length = luigi.IntParameter(
        default=256,
        description="words of a text read: as many as 95 in 100 training texts hold, at most this; the rest is cut",
    )
    image_size = luigi.Parameter(
        default="",
        description="every image is resized to this, as HEIGHTxWIDTH (not capped by `max_image_side`); empty: the "
        "median height and width of up to 1000 training images, scaled down to `max_image_side`. The first "
        "image's channels decide grayscale or colour",
    )
    max_image_side = luigi.IntParameter(
        default=MAX_IMAGE_SIDE,
        description="the longest side, in pixels, of an image size chosen from the data (the shape kept)",
    )
    # Validation applies it (ValidateData, and BatchPredict at night), and versions its output by it.
    max_image_bytes = luigi.IntParameter(
        default=MAX_IMAGE_BYTES,
        significant=False,
        description="larger image files are rejected unread, in training data and at night; images over Pillow's "
        "decompression-bomb limit (178,956,970 pixels) are rejected from their header",
    )
    image_background = luigi.Parameter(
        default=DEFAULT_BACKGROUND,
        description="what transparent pixels are composited onto: a colour name or `#rrggbb`",
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
