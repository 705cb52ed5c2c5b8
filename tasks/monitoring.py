"""Monitoring stage: drift of a night's inputs and predictions; late labels for live quality."""

from __future__ import annotations

import logging
from pathlib import Path

import luigi
import pandas as pd

from pipeline.common.columns import REASON
from pipeline.common.metrics import Metric
from pipeline.stages import raw
from pipeline.stages.prediction import PREDICTIONS, VALID
from pipeline.stages.schema import Schema
from pipeline.store import prediction_log
from tasks import recording
from tasks.base import Outcome, StageTask, read_json, write_json
from tasks.config import data_root, dataset_config
from tasks.features import REFERENCE
from tasks.prediction import BatchPredict, ModelVersionMixin, folder_fingerprint

logger = logging.getLogger(__name__)

DRIFT = "drift.csv"
STATS = "feature_stats.csv"
FEEDBACK = "feedback.csv"


class MonitorDrift(ModelVersionMixin, StageTask):
    """Feature statistics and drift scores of a night's valid rows against the training split."""

    folder = "09_monitoring"
    code = (
        "pipeline/stages/monitoring.py",
        "pipeline/stages/drift_statistics.py",
        "pipeline/store/prediction_log.py",
    )  # record_drift
    expected_files = (DRIFT, STATS, "summary.json")

    date = luigi.DateParameter()
    model_version = luigi.Parameter(default="")
    psi_threshold = luigi.FloatParameter(default=0.2)
    ks_threshold = luigi.FloatParameter(default=0.2)
    js_threshold = luigi.FloatParameter(default=0.1)
    prediction_psi_threshold = luigi.FloatParameter(default=0.2)
    min_rows = luigi.IntParameter(default=30, description="smaller batches are scored but never alert")

    def requires(self):
        return BatchPredict(date=self.date, model_version=self.model)

    def output(self):
        return luigi.LocalTarget(str(data_root() / self.folder / self.date.isoformat() / f"drift-{self.version}"))

    def build(self, out_dir: Path) -> Outcome:
        # scipy loads here, when the stage runs: checking that a night is complete stays fast.
        from pipeline.stages.monitoring import DriftThresholds, alert_line, compare, prediction_profile

        row = recording.model_row(self.model)
        model_dir, batch_dir = Path(row["path"]), Path(self.input().path)
        schema = Schema.from_dict(read_json(model_dir / "preprocessor.json")["schema"])
        regression = row["task"] == "regression"
        predicted = pd.read_parquet(batch_dir / PREDICTIONS, columns=["prediction", "score"])
        predicted = predicted["score"] if regression else predicted["prediction"].astype(str)
        test_predictions = pd.read_parquet(Path(row["evaluation_path"]) / "test_predictions.parquet")["prediction"]
        thresholds = DriftThresholds(
            psi=self.psi_threshold,
            ks=self.ks_threshold,
            js=self.js_threshold,
            prediction_psi=self.prediction_psi_threshold,
            min_rows=self.min_rows,
        )
        stats, drift = compare(
            pd.read_parquet(batch_dir / VALID),
            schema,
            read_json(model_dir / REFERENCE),
            thresholds,
            predicted_classes=predicted.tolist(),
            reference_predictions=prediction_profile(
                (test_predictions if regression else test_predictions.astype(str)).tolist(), numeric=regression
            ),
        )
        prediction_log.record_drift(
            recording.engine(), batch_date=self.date, model_version=self.model, stats=stats, drift=drift
        )
        stats.to_csv(out_dir / STATS, index=False)
        drift.to_csv(out_dir / DRIFT, index=False)
        line = alert_line(drift)
        write_json(
            out_dir / "summary.json",
            {
                "date": self.date.isoformat(),
                "model_version": self.model,
                "alert": line,
                "alerts": int(drift["alert"].sum()) if len(drift) else 0,
            },
        )
        if line:
            logger.warning("%s: %s", self.date, line)
        return Outcome(
            metrics=[Metric(f"drift_{r.method}:{r.feature}", r.score, split="batch") for r in drift.itertuples()]
        )


def feedback_dir(date) -> Path:
    return data_root() / "feedback" / date.isoformat()


class IngestFeedback(StageTask):
    """Labels that arrived late (feedback/<date>/*.csv: id column and label) into `feedback`."""

    folder = "09_monitoring"
    code = (
        "pipeline/store/prediction_log.py",
        "pipeline/store/values.py",
        "pipeline/store/row_writing.py",
        "pipeline/stages/raw.py",
        "pipeline/stages/table_reading.py",
    )
    expected_files = (FEEDBACK, "rejects.csv")

    date = luigi.DateParameter()

    def identity(self) -> dict:
        return {"feedback": folder_fingerprint(feedback_dir(self.date)), "dataset": dataset_config().as_dict()}

    def output(self):
        return luigi.LocalTarget(str(data_root() / self.folder / self.date.isoformat() / f"feedback-{self.version}"))

    def build(self, out_dir: Path) -> Outcome:
        config = dataset_config()
        folder = feedback_dir(self.date)
        files = [file for file in raw.batch_files(folder) if file.suffix.lower() == ".csv"]
        labels = raw.read_feedback(files, id_column=config.id_column, label=config.label)
        unusable = labels["example_id"].isna() | labels["label"].isna()
        labels[unusable].assign(**{REASON: "expected an id and a label"}).to_csv(out_dir / "rejects.csv", index=False)
        usable = labels[~unusable].drop_duplicates("example_id", keep="last")
        # One transaction for the night's files: a bad file leaves no half-loaded night behind.
        loaded = prediction_log.load_feedback(recording.engine(), usable[["example_id", "label"]], source=str(folder))
        usable.to_csv(out_dir / FEEDBACK, index=False)
        logger.info("%s: %d late labels loaded, %d rejected", self.date, loaded, int(unusable.sum()))
        return Outcome(rows_in=len(labels), rows_rejected=int(unusable.sum()))
