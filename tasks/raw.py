"""Raw stage: a versioned snapshot of the configured data set."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from pipeline.artifacts.raw import Snapshot
from pipeline.common.columns import IMAGE_ID_COLUMN, IMAGE_PATH_COLUMN, SOURCE_COLUMNS
from pipeline.common.metrics import Metric
from pipeline.stages import fingerprint
from pipeline.stages.contract import DatasetConfig
from pipeline.store import ledger, markers
from pipeline.store.markers import Marker
from tasks import recording
from tasks.base import Outcome, StageTask
from tasks.config import dataset_config, layout

if TYPE_CHECKING:  # loaded by the functions that need it: `import tasks` stays light
    import pandas as pd

logger = logging.getLogger(__name__)


class IngestData(StageTask):
    """Read the raw files into one table; infer the schema. Its version is the data version."""

    stage = "raw"
    artifact = Snapshot
    rows = True  # its `datasets` row, in every database that records runs on this data

    def identity(self) -> dict:
        config = dataset_config()
        identity = {"dataset": config.as_dict(), "fingerprint": self.fingerprint()}
        if config.include_feedback:
            identity["feedback"] = _digest(self.feedback_labels())
        return identity

    def feedback_labels(self) -> pd.DataFrame:
        """Late labels every annotator of the example agrees on, read once per task instance:
        an example whose annotators disagree teaches nothing sure (pipeline/store/labels.py)."""
        from pipeline.store import labels

        if not hasattr(self, "_feedback"):
            self._feedback = labels.agreed_labels(recording.engine())
        return self._feedback.labels

    def fingerprint(self) -> str:
        if not hasattr(self, "_fingerprint"):
            self._fingerprint = fingerprint.fingerprint(dataset_config().path, layout().fingerprint_cache())
        return self._fingerprint

    @property
    def data_version(self) -> str:
        return self.version

    def build(self, out: Snapshot) -> Outcome:
        # pandas loads here, when the stage runs: checking that it is complete stays fast.
        from pipeline.stages import raw
        from pipeline.stages.schema import infer_schema

        config = dataset_config()
        table = raw.read_raw(
            config.path, config.label, missing_values=config.missing_values, group_pattern=config.group_pattern
        )
        if config.include_feedback:
            table = self._with_feedback(table, config)
        schema = infer_schema(table, config)
        columns = [c for c in table.columns if c not in SOURCE_COLUMNS]
        dataset = {
            "data_version": self.version,
            "path": config.path,
            "fingerprint": self.fingerprint(),
            "rows": len(table),
            "columns": columns,
        }
        out.write(table, schema, dataset)
        return Outcome(rows_in=len(table), metrics=self._feedback_metrics(config))

    def load_rows(self, out: Snapshot, engine, marker: Marker) -> Outcome:
        ledger.record_dataset(engine, **out.dataset(), schema=out.schema().kinds)  # once per version
        markers.mark(engine, marker)
        return Outcome()

    def _feedback_metrics(self, config: DatasetConfig) -> list[Metric]:
        """How many nightly examples joined the training data with an agreed late label, and how
        many labeled examples were left out because their annotators disagree."""
        if not config.include_feedback:
            return []
        return [
            Metric("feedback_used", float(self._feedback_used), split="train"),
            Metric("feedback_conflicting", float(self._feedback.conflicting), split="train"),
        ]

    def _with_feedback(self, table: pd.DataFrame, config: DatasetConfig) -> pd.DataFrame:
        import pandas as pd

        from pipeline.stages import raw

        images = IMAGE_PATH_COLUMN if {IMAGE_PATH_COLUMN, IMAGE_ID_COLUMN} <= set(table.columns) else None
        extra = raw.feedback_examples(
            layout().incoming_root(),
            self.feedback_labels(),
            label=config.label,
            id_column=config.id_column,
            image_column=images,
            missing_values=config.missing_values,
        )
        logger.info(
            "%d nightly examples with late labels join the training data; %d labeled examples left out: "
            "their annotators disagree",
            len(extra),
            self._feedback.conflicting,
        )
        self._feedback_used = len(extra)  # an agreed label whose night is gone joins nothing
        return pd.concat([table, extra], ignore_index=True) if len(extra) else table


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
