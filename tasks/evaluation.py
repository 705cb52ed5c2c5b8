"""Evaluation stage: metrics.json, plots, test predictions and report.html beside them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import luigi

from pipeline.artifacts.evaluation import EvaluationFolder
from pipeline.artifacts.features import FeatureArrays
from pipeline.artifacts.model import ModelFolder
from pipeline.common.columns import EXAMPLE_ID
from pipeline.common.metrics import BASELINE_DIAGNOSES, Metric, headline_text
from tasks.base import ONE_CARD, Outcome, StageTask
from tasks.features import FitPreprocessor
from tasks.split import SplitData
from tasks.training import TrainModel
from tasks.validation import ValidateData

if TYPE_CHECKING:  # loaded by the functions that need it: `import tasks` stays light
    import pandas as pd

logger = logging.getLogger(__name__)
BASELINE_FACTS = ("description", "fitted_rows", "sampled", "seconds")  # in metrics.json, not run_metrics


class EvaluateModel(StageTask):
    """Score the trained model and its baselines on the test split; write the metrics and the report."""

    stage = "evaluation"
    artifact = EvaluationFolder
    gpu = ONE_CARD

    headline = luigi.Parameter(
        default="",
        description="the one score models are compared by, e.g. accuracy, or f1_macro:0.7, accuracy:0.3 (lower-is-"
        "better metrics count negatively); a configured one always wins. Empty: accuracy (classification) or r2, "
        "except where one class holds at least 70%% of the training labels: then roc_auc (two classes) or "
        "balanced_accuracy (more)",
    )
    baseline_rows = luigi.IntParameter(
        default=50_000,
        description="training rows each baseline (majority or mean, linear, TF-IDF, gradient boosting) is fitted on "
        "at most, a seeded sample beyond; 0 fits none",
    )

    def requires(self):
        return {"model": TrainModel(), "features": FitPreprocessor(), "validated": ValidateData(), "split": SplitData()}

    def build(self, out: EvaluationFolder) -> Outcome:
        from pipeline.stages.diagnosis import weights_epoch
        from pipeline.stages.evaluation import evaluate

        model: ModelFolder = self.inputs()["model"]
        features: FeatureArrays = self.inputs()["features"]
        preprocessor = features.preprocessor()
        schema = preprocessor.schema
        # One read of the validated rows: the worst examples' features and the slice column.
        extra = [c for c in (schema.slice_column, schema.time_column) if c and c not in schema.kinds]
        examples = self.inputs()["validated"].table(columns=[EXAMPLE_ID, *schema.kinds, *dict.fromkeys(extra)])
        history = model.history()
        evaluation = evaluate(
            model.load_model(),
            preprocessor,
            {
                split: features.arrays(split)
                for split in ("train", "validation", "test")
                if split != "train" or self.baseline_rows
            },
            history,
            headline=self.headline,
            slices=_slices(examples, schema.slice_column),
            examples=examples,
            split_checks=self.inputs()["split"].checks(),
            baseline_rows=self.baseline_rows,
            training_labels=features.labels("train"),
            evaluated_epoch=weights_epoch(model.training(), history),
        )
        out.write(evaluation)
        out.write_prediction_calendar(_prediction_calendar(evaluation.test_predictions, examples, schema.time_column))
        document = evaluation.document
        test = ", ".join(f"{k} {v:.4f}" for k, v in document["splits"]["test"].items() if k != "rows")
        logger.info(
            "test %s; headline %s %.4f (%s); %s: %s",
            test,
            headline_text(document["headline"]["definition"]),
            document["headline"]["value"],
            document["headline"]["rule"],
            document["diagnosis"]["diagnosis"],
            document["diagnosis"]["reason"],
        )
        for name, baseline in document.get("baselines", {}).items():
            sampled = f", fitted on a sample of {baseline['fitted_rows']} rows" if baseline["sampled"] else ""
            logger.info("baseline %s: headline %.4f%s", name, baseline["headline"], sampled)
        if document["diagnosis"]["diagnosis"] in BASELINE_DIAGNOSES:
            logger.warning("%s: %s", document["diagnosis"]["diagnosis"], document["diagnosis"]["reason"])
        for warning in document["split"]["warnings"]:
            logger.warning("split: %s", warning)
        return Outcome(metrics=document_metrics(document))


def _slices(examples: pd.DataFrame, column: str) -> dict | None:
    return dict(zip(examples[EXAMPLE_ID], examples[column])) if column else None


def _prediction_calendar(test_predictions: pd.DataFrame, examples: pd.DataFrame, time_column: str) -> dict | None:
    """Each test prediction with its row's day of the year: `[MonitorDrift] reference = calendar`."""
    from pipeline.stages.seasons import days_of_year

    if not time_column:
        return None
    times = test_predictions[["example_id"]].assign(
        **{time_column: test_predictions["example_id"].map(examples.set_index(EXAMPLE_ID)[time_column])}
    )
    days = days_of_year(times, time_column)
    if days is None:
        return None
    known = days.notna().to_numpy()
    predicted = test_predictions["prediction"][known]
    return {"day_of_year": days[known].astype(int).tolist(), "prediction": predicted.tolist()}


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
    metrics += [
        Metric(name, value, split="test", baseline=baseline)
        for baseline, values in document.get("baselines", {}).items()
        for name, value in values.items()
        if name not in BASELINE_FACTS
    ]
    return metrics
