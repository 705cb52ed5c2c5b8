"""Nightly(date): score, log, monitor and take late labels in; exit non-zero on drift."""
from __future__ import annotations

import json
import logging

import luigi

from pipeline import prediction_log
from pipeline.errors import DataError
from tasks import recording
from tasks.base import Outcome, RecordedTask
from tasks.config import data_root
from tasks.monitoring import IngestFeedback, MonitorDrift
from tasks.prediction import LogPredictions, ModelVersionMixin

logger = logging.getLogger(__name__)


class DriftAlert(DataError):
    """The night's inputs or predictions drifted: a person should look before trusting them."""


class Nightly(ModelVersionMixin, RecordedTask):
    """The cron entry: `luigi --module tasks Nightly --date 2026-11-05` (scripts/nightly.sh)."""

    date = luigi.DateParameter()
    model_version = luigi.Parameter(default="", description="empty: the production model")

    def requires(self):
        return [LogPredictions(date=self.date, model_version=self.model),
                MonitorDrift(date=self.date, model_version=self.model),
                IngestFeedback(date=self.date)]

    @property
    def version(self) -> str:
        return self.model

    @property
    def data_version(self) -> str | None:
        return recording.model_row(self.model)["data_version"]

    def output(self):
        return luigi.LocalTarget(str(data_root() / "09_monitoring" / self.date.isoformat() / f"nightly-{self.model}.json"))

    def execute(self) -> Outcome:
        alerts = prediction_log.alerts(recording.engine(), self.date, self.model)
        if alerts:
            features = sorted({alert["feature"] for alert in alerts})
            # No output is written: the night stays incomplete, and every rerun says so again.
            raise DriftAlert(f"drift on {self.date} (model {self.model}) in {', '.join(features)}; "
                             "see the drift_alerts view")
        with self.output().open("w") as handle:
            json.dump({"date": self.date.isoformat(), "model_version": self.model, "alerts": 0}, handle)
        return Outcome()
