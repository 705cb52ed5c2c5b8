"""Features stage: preprocessing fitted on the training split, every split transformed."""

from __future__ import annotations

from pathlib import Path

import luigi
import pandas as pd

from pipeline.common.columns import EXAMPLE_ID, SPLIT, SPLITS
from pipeline.stages import features
from pipeline.stages.schema import Schema
from tasks.base import Outcome, StageTask, read_json, write_json
from tasks.raw import SCHEMA
from tasks.split import MANIFEST, SplitData
from tasks.validation import VALID, ValidateData

PREPROCESSOR = "preprocessor.json"
REFERENCE = "reference.json"  # training-split profile the nightly drift monitor compares against


class FitPreprocessor(StageTask):
    folder = "04_features"
    code = ("pipeline/stages/features.py", "pipeline/stages/monitoring.py", "pipeline/stages/drift_statistics.py")
    expected_files = (PREPROCESSOR, REFERENCE) + tuple(f"{name}.npz" for name in SPLITS)

    max_vocabulary = luigi.IntParameter(default=20_000)
    max_text_length = luigi.IntParameter(default=256)
    image_size = luigi.Parameter(default="", description="HEIGHTxWIDTH; empty: the first training image's size")

    def requires(self):
        return [ValidateData(), SplitData()]

    def build(self, out_dir: Path) -> Outcome:
        validated, split_dir = self.input_dir(0), self.input_dir(1)
        schema = Schema.from_dict(read_json(validated / SCHEMA))
        table = pd.read_parquet(validated / VALID)
        manifest = pd.read_parquet(split_dir / MANIFEST)
        if not (manifest[EXAMPLE_ID].to_numpy() == table[EXAMPLE_ID].to_numpy()).all():
            raise RuntimeError(f"{split_dir / MANIFEST} does not follow the rows of {validated / VALID}")
        parts = {name: table[manifest[SPLIT].to_numpy() == name] for name in SPLITS}
        preprocessor = features.fit(
            parts["train"],
            schema,
            max_vocabulary=self.max_vocabulary,
            max_text_length=self.max_text_length,
            image_size=_size(self.image_size),
        )
        write_json(out_dir / PREPROCESSOR, preprocessor)
        from pipeline.stages.monitoring import reference_profile  # scipy: imported when a stage runs, not to check it

        write_json(out_dir / REFERENCE, reference_profile(parts["train"], schema))
        for done, (name, part) in enumerate(parts.items(), start=1):
            features.save_arrays(
                out_dir / f"{name}.npz",
                features.transform(part, preprocessor),
                features.encode_labels(part[schema.label], preprocessor),
                part[EXAMPLE_ID],
            )
            self.progress(done, len(parts), f"transformed {name}")
        return Outcome()


def _size(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    height, _, width = text.lower().partition("x")
    return int(height), int(width)
