"""Nightly(date): score, log, monitor and take late labels in; exit non-zero on drift."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import luigi

from pipeline.artifacts.evaluation import EvaluationFolder
from pipeline.artifacts.monitoring import NightMarker, write_night_report
from pipeline.artifacts.prediction import NightScores
from pipeline.errors import DataError
from pipeline.store import prediction_log
from pipeline.store.database import DatabaseUnavailable
from tasks import recording
from tasks.base import Outcome, RecordedTask
from tasks.config import layout
from tasks.monitoring import IngestFeedback, MonitorDrift
from tasks.prediction import BatchPredict, LogPredictions, ModelVersionMixin

logger = logging.getLogger(__name__)


class DriftAlert(DataError):
    """The night's inputs or predictions drifted: a person should look before trusting them."""


class TooManyRejects(DataError):
    """Most of the night's rows could not be used: the supplier's files need a look."""


class Nightly(ModelVersionMixin, RecordedTask):
    """The cron entry: `luigi --module tasks Nightly --date 2026-11-05` (scripts/nightly.sh)."""

    date = luigi.DateParameter()
    model_version = luigi.Parameter(default="", description="empty: the production model")
    report_nights = luigi.IntParameter(
        default=14, significant=False, description="nights shown in the nightly report's charts"
    )
    max_reject_share = luigi.FloatParameter(default=0.5, description="fail the night above this share of rejected rows")

    def requires(self):
        if self._unresolved() is not None:
            return {}  # run() says why, in one line
        return {
            "logged": LogPredictions(date=self.date, model_version=self.model),
            "drift": MonitorDrift(date=self.date, model_version=self.model),
            "feedback": IngestFeedback(date=self.date),
        }

    def complete(self) -> bool:
        # Finding the production model needs the database; when that fails, Luigi would print a
        # traceback from complete(). Instead the night is incomplete and run() raises one line.
        return self._unresolved() is None and super().complete()

    def _unresolved(self) -> Exception | None:
        try:
            _ = self.model  # resolved once, here, so that a missing production model is one line
        except (DataError, DatabaseUnavailable) as error:
            return error
        return None

    @property
    def version(self) -> str:
        """The model and what it was given: new files or labels for the night make a new version."""
        inputs = "".join(task.version for task in self.requires().values())
        return f"{self.model}-{hashlib.sha256(inputs.encode()).hexdigest()[:8]}"

    @property
    def data_version(self) -> str | None:
        return recording.model_row(self.model)["data_version"]

    def output(self):
        return luigi.LocalTarget(str(layout().night_marker(self.date, self.version)))

    def report_path(self) -> Path:
        return layout().night_report(self.date, self.model)

    def run(self):
        problem = self._unresolved()
        if problem is not None:
            raise problem
        super().run()

    def execute(self) -> Outcome:
        alerts = prediction_log.alerts(recording.engine(), self.date, self.model)
        # The report first, drifted night or not: the night a person most needs it is the one that fails.
        report_error = self._write_report()
        if alerts:
            features = sorted({alert["feature"] for alert in alerts})
            # No output is written: the night stays incomplete, and every rerun says so again.
            report = "" if report_error else f" and {self.report_path()}"
            raise DriftAlert(
                f"drift on {self.date} (model {self.model}) in {', '.join(features)}; see the drift_alerts view{report}"
            )
        self._check_rejects()
        if report_error is not None:
            raise report_error
        with self.output().temporary_path() as temporary:
            NightMarker(Path(temporary)).write(
                {"date": self.date.isoformat(), "model_version": self.model, "alerts": 0}
            )
        return Outcome()

    def _check_rejects(self) -> None:
        scores = NightScores(Path(BatchPredict(date=self.date, model_version=self.model).output().path))
        batch = scores.summary()
        rows_in, rejected = batch["rows_in"], batch["rows_rejected"]
        if rows_in and rejected / rows_in > self.max_reject_share:
            raise TooManyRejects(
                f"{self.date}: {rejected} of {rows_in} rows rejected "
                f"({rejected / rows_in:.0%} > {self.max_reject_share:.0%}); reasons in {scores.rejects_path}"
            )

    def _write_report(self) -> Exception | None:
        """Write the nightly report; a failure is returned, so that it never hides a drift alert."""
        from pipeline.rendering.reports.nightly import nightly_report
        from pipeline.store.night_history import night_history

        try:
            history = night_history(
                recording.engine(), batch_date=self.date, model_version=self.model, nights=self.report_nights
            )
            path = write_night_report(
                self.report_path(), nightly_report(history, reference_predictions=_reference(history))
            )
        except Exception as error:  # reported below, raised unless a drift alert wins
            logger.exception("%s: the nightly report could not be written", self.date)
            return error
        logger.info("%s: nightly report %s", self.date, path)
        return None


def _reference(history):
    """What the model predicted on its test split; None when its evaluation folder is gone."""
    if not history.evaluation_path:
        return None
    try:
        return EvaluationFolder(Path(history.evaluation_path)).test_predictions(["prediction"])["prediction"]
    except (OSError, ValueError, KeyError):
        return None
