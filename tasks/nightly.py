"""Nightly(date): score, log, monitor and take late labels in; exit non-zero on drift."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import luigi

from pipeline.artifacts.evaluation import EvaluationFolder
from pipeline.artifacts.monitoring import DriftFolder, write_night_report
from pipeline.artifacts.prediction import NightScores
from pipeline.errors import DataError
from pipeline.store import markers
from pipeline.store.database import DatabaseUnavailable
from pipeline.store.markers import Marker
from tasks import recording
from tasks.base import Outcome, RecordedTask
from tasks.base.targets import Marked
from tasks.config import labeling_settings, layout
from tasks.monitoring import IngestFeedback, MonitorDrift
from tasks.prediction import BatchPredict, LogPredictions, ModelVersionMixin

logger = logging.getLogger(__name__)


class DriftAlert(DataError):
    """The night's inputs or predictions drifted: a person should look before trusting them."""


class TooManyRejects(DataError):
    """Most of the night's rows could not be used: the supplier's files need a look."""


class PartialNight(DataError):
    """Some of the night's files could not be used and were quarantined; the rest were scored."""

    exit_code = 31  # `overnight nightly` and scripts/nightly.sh exit with it (README, "Nightly batches")


class MissingNight(DataError):
    """The night's folder did not exist: an export that never came is not a quiet night."""

    exit_code = 32


class Nightly(ModelVersionMixin, RecordedTask):
    """The cron entry: `luigi --module tasks Nightly --date 2026-11-05` (scripts/nightly.sh)."""

    date = luigi.DateParameter()
    model_version = luigi.Parameter(default="", description="empty: the production model")
    report_nights = luigi.IntParameter(
        default=14, significant=False, description="nights shown in the nightly report's charts"
    )
    max_reject_share = luigi.FloatParameter(default=0.5, description="fail the night above this share of rejected rows")
    allow_missing = luigi.BoolParameter(
        default=False, description="a night without its incoming folder passes (data sets where that is normal)"
    )

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
        # The all-clear is a row, per database: a night that drifted in one database must not pass
        # in another because a file in the shared data folder says it did.
        return Marked(self.task_family, self.version)

    def report_path(self) -> Path:
        return layout().night_report(self.date, self.model)

    def run(self):
        problem = self._unresolved()
        if problem is not None:
            raise problem
        super().run()

    def execute(self) -> Outcome:
        from pipeline.store import prediction_log

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
        self._check_files()
        if report_error is not None:
            raise report_error
        markers.mark(recording.engine(), Marker(self.task_family, self.version, self.run_id))
        return Outcome()

    def _check_files(self) -> None:
        """A missing folder, quarantined files, then too many rejected rows: each fails the night."""
        scores = NightScores(Path(BatchPredict(date=self.date, model_version=self.model).output().path))
        batch = scores.summary()
        if batch.get("status") == "missing" and not self.allow_missing:
            raise MissingNight(
                f"{self.date}: no folder {batch['incoming']}: the night's files never arrived "
                "([Nightly] allow_missing = true where a night without files is normal)"
            )
        quarantined = batch.get("quarantined", [])
        if quarantined:
            first = quarantined[0]
            raise PartialNight(
                f"{self.date}: {len(quarantined)} file(s) quarantined, every other file scored; "
                f"{first['reason']}; copies and reasons in {scores.quarantine_path}"
            )
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
            report = nightly_report(
                history,
                reference_predictions=_reference(history),
                drift_reference=self._drift_reference(),
                annotators=_annotators(),
            )
            path = write_night_report(self.report_path(), report)
        except Exception as error:  # reported below, raised unless a drift alert wins
            logger.exception("%s: the nightly report could not be written", self.date)
            return error
        logger.info("%s: nightly report %s", self.date, path)
        return None

    def _drift_reference(self) -> str | None:
        """What the night's drift was measured against, in words (its drift folder's summary)."""
        drift = DriftFolder(Path(MonitorDrift(date=self.date, model_version=self.model).output().path))
        return drift.summary().get("reference") if drift.path.is_dir() else None


def _annotators():
    """Per annotator: labels, agreement, kappa and whether `[labeling]` flags them."""
    from pipeline.stages.agreement import annotator_table
    from pipeline.store.labels import agreement_rows

    return annotator_table(*agreement_rows(recording.engine()), labeling_settings())


def _reference(history):
    """What the model predicted on its test split; None when its evaluation folder is gone."""
    if not history.evaluation_path:
        return None
    try:
        return EvaluationFolder(Path(history.evaluation_path)).test_predictions(["prediction"])["prediction"]
    except (OSError, ValueError, KeyError):
        return None
