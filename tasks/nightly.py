"""Nightly(date): score, log, monitor and take late labels in; exit non-zero on drift."""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import luigi

from pipeline.artifacts.evaluation import EvaluationFolder
from pipeline.artifacts.monitoring import DriftFolder, write_night_report
from pipeline.artifacts.prediction import NightScores
from pipeline.common import disk
from pipeline.errors import DataError
from pipeline.store import markers
from pipeline.store.database import DatabaseUnavailable
from pipeline.store.markers import Marker
from tasks import recording
from tasks.base import Outcome, RecordedTask
from tasks.base.targets import Marked
from tasks.config import flag, labeling_settings, layout
from tasks.monitoring import IngestFeedback, MonitorDrift
from tasks.prediction import BatchPredict, LogPredictions, ModelVersionMixin, ScoreShard, scores_whole

logger = logging.getLogger(__name__)


class DriftAlert(DataError):
    """The night's inputs or predictions drifted: a person should look before trusting them."""


class TooManyRejects(DataError):
    """Most of the night's rows could not be used: the supplier's files need a look."""


class PartialNight(DataError):
    """Some of the night's files could not be used and were quarantined; the rest were scored."""

    exit_code = 31  # `overnight nightly` and scripts/nightly.sh exit with it (docs/nightly.md, exit codes)


class MissingNight(DataError):
    """The night's folder did not exist: an export that never came is not a quiet night."""

    exit_code = 32


class Nightly(ModelVersionMixin, RecordedTask):
    """The cron entry: `luigi --module tasks Nightly --date 2026-11-05` (scripts/nightly.sh)."""

    report_nights = luigi.IntParameter(
        default=14,
        significant=False,
        description="nights shown in the nightly report's charts: the night and those before it, up to this many",
    )
    max_reject_share = luigi.FloatParameter(
        default=0.5, description="a night with a larger share of rejected rows fails"
    )
    allow_missing = flag(
        default=False,
        description="a night without its incoming folder passes (data sets where that is normal); false: it fails "
        "as missing",
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
        # A loaded night whose scores were damaged since (a truncated predictions.parquet) is not
        # done: its scores are rebuilt and loaded again (tasks/prediction.py scores_whole).
        return (
            self._unresolved() is None
            and super().complete()
            and scores_whole(BatchPredict(date=self.date, model_version=self.model))
        )

    @classmethod
    def bulk_complete(cls, dates):
        """Which nights of a backfill are done, for Luigi's RangeDaily (which otherwise lists files,
        and a night's output is a marker in the database). `cls` may be a partial with of_params."""
        return [date for date in dates if cls(date=date).complete()]

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
        new = [alert for alert in alerts if not alert["acknowledged"]]
        # The report first, drifted night or not: the night a person most needs it is the one that fails.
        report_error = self._write_report()
        acknowledged = _acknowledged_part(alerts)
        if new:
            features = sorted({alert["feature"] for alert in new})
            # No output is written: the night stays incomplete, and every rerun says so again.
            report = "" if report_error else f" and {self.report_path()}"
            suggestion = _suggestion_for(self._drift_summary(), features)
            raise DriftAlert(
                f"drift on {self.date} (model {self.model}) in {', '.join(features)}{acknowledged}; "
                + (f"{suggestion}; " if suggestion else "")
                + f"see the drift_alerts view{report}"
            )
        if alerts:
            logger.warning("%s: drift alerts all acknowledged%s", self.date, acknowledged)
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
                f"{first['reason']}; reasons in {scores.path / 'quarantine.csv'}, copies of the small files in "
                f"{scores.quarantine_path}"
            )
        rows_in, rejected = batch["rows_in"], batch["rows_rejected"]
        if rows_in and rejected / rows_in > self.max_reject_share:
            raise TooManyRejects(
                f"{self.date}: {rejected} of {rows_in} rows rejected "
                f"({rejected / rows_in:.0%} > {self.max_reject_share:.0%}); reasons in {scores.rejects_path}"
            )

    def _write_report(self, failures: Sequence = ()) -> Exception | None:
        """Write the nightly report; a failure is returned, so that it never hides a drift alert.

        Args:
            failures: FailedStep of the night's steps that failed before Nightly could run
                (`_report_failed_night`): each a banner at the top of the page.
        """
        from pipeline.rendering.reports.nightly import nightly_report
        from pipeline.store.night_history import night_history

        # After a failed step, its outputs may be missing: what needs them is left out, not fatal.
        spare = _or_none if failures else _called
        try:
            history = night_history(
                recording.engine(),
                batch_date=self.date,
                model_version=self.model,
                nights=self.report_nights,
                trivial=_or_none(self._trivial_predictor),  # an annotation: never worth the page
            )
            report = nightly_report(
                history,
                reference_predictions=_reference(history),
                drift_reference=spare(self._drift_reference),
                drift_notes=spare(self._drift_notes),
                annotators=spare(_annotators),
                failures=failures,
            )
            path = write_night_report(self.report_path(), report)
        except Exception as error:  # noqa: BLE001 - reported below, raised unless a drift alert wins
            _report_not_written(self.date, "the nightly report", self.report_path(), error)
            return error
        logger.info("%s: nightly report %s", self.date, path)
        return None

    def _trivial_predictor(self):
        """Always the training majority class (or mean) of the night's model: what its live
        quality is read against; None when its folders no longer say."""
        from pipeline.artifacts.trivial import training_majority_class, training_mean
        from pipeline.store.night_history import TrivialPredictor

        row = recording.model_row(self.model)
        if row.get("task") == "regression":
            value = training_mean(row.get("path"))
        else:
            value = training_majority_class(row.get("evaluation_path"))
        return TrivialPredictor(value) if value is not None else None

    def _drift_reference(self) -> str | None:
        """What the night's drift was measured against, in words (its drift folder's summary)."""
        return self._drift_summary().get("reference")

    def _drift_notes(self) -> list[dict]:
        """Why each check of the night that has no score did not run (its drift folder's notes)."""
        drift = self._drift_folder()
        return drift.notes() if drift.path.is_dir() else []

    def _drift_folder(self) -> DriftFolder:
        return DriftFolder(Path(MonitorDrift(date=self.date, model_version=self.model).output().path))

    def _drift_summary(self) -> dict:
        drift = self._drift_folder()
        return drift.summary() if drift.path.is_dir() else {}


def _suggestion_for(summary: dict, features: list[str]) -> str | None:
    """The drift folder's policy suggestion, where it names a feature that failed the night."""
    suggested = summary.get("suggested_policies") or {}
    return summary.get("suggestion") if set(suggested) & set(features) else None


def _acknowledged_part(alerts: list[dict]) -> str:
    """e.g. " (2 acknowledged: month by out_of_range, weekday by per_night)"; "" when none is."""
    acknowledged = [alert for alert in alerts if alert["acknowledged"]]
    if not acknowledged:
        return ""
    named = ", ".join(f"{alert['feature']} by {alert['method']}" for alert in acknowledged)
    return f" ({len(acknowledged)} acknowledged: {named})"


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


def _called(function):
    return function()


def _or_none(function):
    """function(), or None when it raises: a part of the page that a failed step left unreadable."""
    try:
        return function()
    except Exception as error:  # noqa: BLE001 - the page goes on without this part; the log says why
        logger.warning("nightly report: %s left out: %s", getattr(function, "__name__", function), error)
        return None


# --- A report for a night whose steps failed ---------------------------------------------------
# Nightly never runs when a step it requires fails, so its own report code never runs either. A
# Luigi event handler on the night's steps writes the page instead, at Nightly.report_path, with
# a banner per failed step: the same for `luigi --module tasks Nightly` and `overnight nightly`
# (which runs that very command), and Luigi's exit code is left as it was.

NIGHT_STEPS = (ScoreShard, BatchPredict, LogPredictions, MonitorDrift, IngestFeedback)
ONE_LINE = 300  # characters of a failed step's error shown in its banner
# date -> step -> its one-line error, for the steps that failed in this process since Nightly
# of that date was last scheduled. A step that succeeds later in the same build rewrites the page
# with its rows and these banners. (With Luigi workers > 1, each task runs in a process of its
# own: the page names the failure that wrote it.)
_failed_steps: dict[datetime.date, dict[str, str]] = {}


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ").rstrip(".")
    return text if len(text) <= ONE_LINE else text[: ONE_LINE - 1] + "…"


def _night_scheduled(task, dependency) -> None:
    # A new attempt at the night (a rerun, another build in this process): earlier failures are not its own.
    _failed_steps.pop(task.date, None)


def _step_failed(task, error: BaseException) -> None:
    if not isinstance(task, NIGHT_STEPS):
        return
    _failed_steps.setdefault(task.date, {})[task.task_family] = _one_line(error)
    _report_failed_night(task)


def _step_succeeded(task) -> None:
    # A step that ran after another failed: its rows belong on the failed night's page.
    if isinstance(task, NIGHT_STEPS) and task.date in _failed_steps:
        _report_failed_night(task)


def _report_failed_night(task) -> None:
    """Write the night's report with a banner per failed step; never raises (the step's own
    failure is what Luigi must report)."""
    from pipeline.rendering.reports.nightly import FailedStep

    failures = [FailedStep(step, error) for step, error in sorted(_failed_steps.get(task.date, {}).items())]
    try:
        # IngestFeedback has no model: its night is the production model's, as `Nightly --date` runs it.
        night = Nightly(date=task.date, model_version=getattr(task, "model_version", ""))
        if night._unresolved() is not None:
            logger.warning("%s: no report for the failed night: %s", task.date, night._unresolved())
            return
        if night._write_report(failures) is None:
            logger.warning(
                "%s: report of the night and its %d failed step(s) in %s", task.date, len(failures), night.report_path()
            )
    except Exception as error:  # noqa: BLE001 - see the docstring: the step's own failure must reach Luigi
        _report_not_written(task.date, "the report of the failed night", None, error)


def _report_not_written(date, what: str, path, error: BaseException) -> None:
    """Logged in one line when the disk is full (the failed step's own line says so already, and a
    traceback would bury it), with the traceback otherwise."""
    if disk.is_disk_full(error):
        logger.error("%s: %s could not be written: %s", date, what, disk.disk_full(error, path or layout().root))
    else:
        logger.error("%s: %s could not be written", date, what, exc_info=error)


Nightly.event_handler(luigi.Event.DEPENDENCY_DISCOVERED)(_night_scheduled)
for _step in NIGHT_STEPS:
    _step.event_handler(luigi.Event.FAILURE)(_step_failed)
    # complete() or requires() raised while scheduling: the step never ran, the night failed all the same.
    _step.event_handler(luigi.Event.BROKEN_TASK)(_step_failed)
    _step.event_handler(luigi.Event.SUCCESS)(_step_succeeded)
