"""06_evaluation/<version>/: metrics, plots, the test predictions worst first, and report.html."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pipeline.artifacts.folder import StageFolder, read_json

if TYPE_CHECKING:  # loaded by the functions that need it: `import tasks` stays light
    import pandas as pd

if TYPE_CHECKING:  # the stage module loads scikit-learn or Pillow: only to run a stage
    from pipeline.stages.evaluation import Evaluation

METRICS = "metrics.json"
TEST_PREDICTIONS = "test_predictions.parquet"  # one row per test example, worst first
REPORT = "report.html"  # all of it in one self-contained page
LEARNING_CURVES = "learning_curves.png"  # the other plots depend on the task (Evaluation.plots)
# Optional: each test prediction with its row's day of the year, where the data is dated (the
# calendar drift reference compares a night's predictions with those of its season).
PREDICTION_CALENDAR = "prediction_calendar.json"


class EvaluationFolder(StageFolder):
    FILES = (METRICS, LEARNING_CURVES, TEST_PREDICTIONS, REPORT)

    def metrics(self) -> dict:
        return read_json(self.file(METRICS))

    def test_predictions(self, columns: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.file(TEST_PREDICTIONS), columns=columns)

    def prediction_calendar(self) -> dict | None:
        """{"day_of_year": [...], "prediction": [...]}; None when the data has no dates or the
        folder predates the calendar reference."""
        path = self.path / PREDICTION_CALENDAR
        return read_json(path) if path.exists() else None

    def write_prediction_calendar(self, document: dict | None) -> None:
        if document:
            (self.path / PREDICTION_CALENDAR).write_text(json.dumps(document), encoding="utf-8")

    @property
    def report_path(self):
        return self.path / REPORT

    def write(self, evaluation: Evaluation) -> None:
        (self.path / METRICS).write_text(json.dumps(evaluation.document, indent=2, default=float))
        evaluation.test_predictions.to_parquet(self.path / TEST_PREDICTIONS)
        for name, png in evaluation.plots.items():
            (self.path / name).write_bytes(png)
        (self.path / REPORT).write_text(evaluation.report, encoding="utf-8")
