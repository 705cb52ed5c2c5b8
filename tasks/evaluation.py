"""Evaluation stage: metrics.json, plots, test predictions and report.html beside them."""

from __future__ import annotations

import logging
from pathlib import Path

import luigi
import pandas as pd

from pipeline.common.columns import EXAMPLE_ID
from pipeline.common.metrics import Metric
from pipeline.stages.schema import Schema
from tasks.base import Outcome, StageTask, read_json
from tasks.features import PREPROCESSOR, FitPreprocessor
from tasks.raw import SCHEMA
from tasks.training import TrainModel
from tasks.validation import VALID, ValidateData

logger = logging.getLogger(__name__)

METRICS = "metrics.json"
REPORT = "report.html"


class EvaluateModel(StageTask):
    folder = "06_evaluation"
    code = (
        "pipeline/stages/evaluation.py",
        "pipeline/rendering/plots.py",
        "pipeline/stages/prediction.py",
        "pipeline/rendering/reports",
    )
    expected_files = (METRICS, "learning_curves.png", "test_predictions.parquet", REPORT)

    headline = luigi.Parameter(
        default="",
        description="e.g. accuracy, or f1_macro:0.7, accuracy:0.3; empty: accuracy (classification), r2 (regression)",
    )

    def requires(self):
        return [TrainModel(), FitPreprocessor(), ValidateData()]

    def build(self, out_dir: Path) -> Outcome:
        from pipeline.stages.evaluation import evaluate
        from pipeline.stages.training import read_history

        model_dir, features_dir, validated = self.input_dir(0), self.input_dir(1), self.input_dir(2)
        preprocessor = read_json(features_dir / PREPROCESSOR)
        document = evaluate(
            model_dir,
            features_dir,
            preprocessor,
            read_history(model_dir / "history.csv"),
            headline=self.headline,
            out_dir=out_dir,
            slices=self._slices(validated),
            examples=self._examples(validated, preprocessor),
        )
        test = document["splits"]["test"]
        logger.info(
            "test %s; headline %.4f; %s: %s",
            ", ".join(f"{k} {v:.4f}" for k, v in test.items() if k != "rows"),
            document["headline"]["value"],
            document["diagnosis"]["diagnosis"],
            document["diagnosis"]["reason"],
        )
        return Outcome(metrics=document_metrics(document))

    def _examples(self, validated: Path, preprocessor: dict) -> pd.DataFrame:
        """Ids and feature columns, for the report to show the worst test examples."""
        columns = [EXAMPLE_ID, *preprocessor["schema"]["kinds"]]
        return pd.read_parquet(validated / VALID, columns=columns)

    def _slices(self, validated: Path) -> dict | None:
        column = Schema.from_dict(read_json(validated / SCHEMA)).slice_column
        if not column:
            return None
        table = pd.read_parquet(validated / VALID, columns=[EXAMPLE_ID, column])
        return dict(zip(table[EXAMPLE_ID], table[column]))


def document_metrics(document: dict) -> list[Metric]:
    metrics = [
        Metric(name, value, split=split)
        for split, values in document["splits"].items()
        for name, value in values.items()
        if name != "rows"
    ]
    metrics += [
        Metric(name, value, split="test", slice=slice_name)
        for slice_name, values in document["slices"].items()
        for name, value in values.items()
        if name != "rows"
    ]
    metrics.append(Metric("headline", document["headline"]["value"], split="test"))
    return metrics
