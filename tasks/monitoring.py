"""Monitoring stage: drift of a night's inputs and predictions; late labels for live quality."""

from __future__ import annotations

import logging
from pathlib import Path

import luigi

from pipeline.artifacts.evaluation import EvaluationFolder
from pipeline.artifacts.model import ModelFolder
from pipeline.artifacts.monitoring import DriftFolder, FeedbackFolder, quiet_nights
from pipeline.artifacts.prediction import NightScores
from pipeline.common.columns import ANNOTATOR, ANNOTATOR_LENGTH, REASON, SOURCE_FILE, SOURCE_ROW
from pipeline.common.metrics import Metric
from pipeline.errors import DataError
from pipeline.store.markers import Marker
from tasks import recording
from tasks.base import Outcome, StageTask
from tasks.base.night import NightParameters
from tasks.config import dataset_config, labeling, layout, tie_order
from tasks.prediction import BatchPredict, ModelVersionMixin, folder_fingerprint

logger = logging.getLogger(__name__)


ONLINE_SOURCE = "online"  # the source named for the day's online answers in a problem line
REFERENCES = ("training", "rolling", "calendar")  # pipeline/stages/references.py says what each is for


class MonitorDrift(ModelVersionMixin, StageTask):
    """Feature statistics and drift scores of a night's valid rows against its reference
    (`reference`: the training split, recent quiet nights, or the same time of year in training)."""

    stage = "monitoring"
    artifact = DriftFolder
    rows = True  # the night's feature statistics and drift scores

    # Each threshold is raised, for a small night, to the score sampling noise alone reaches 1 time in 1,000.
    psi_threshold = luigi.FloatParameter(
        default=0.2, description="a feature's population stability index above this alerts (raised on small nights)"
    )
    ks_threshold = luigi.FloatParameter(
        default=0.2,
        description="a numeric feature's Kolmogorov-Smirnov statistic above this alerts (raised on small nights)",
    )
    js_threshold = luigi.FloatParameter(
        default=0.1,
        description="a categorical feature's Jensen-Shannon distance above this alerts (raised on small nights)",
    )
    missing_threshold = luigi.FloatParameter(
        default=0.1, description="data quality: a missing share this much above the reference's alerts"
    )
    out_of_range_threshold = luigi.FloatParameter(
        default=0.01, description="data quality: a share of values outside the reference's range above this alerts"
    )
    unseen_threshold = luigi.FloatParameter(
        default=0.05,
        description="data quality: a share of categories the reference never had (of every training category, up to "
        "10,000) above this alerts; a column stuck at one value always alerts",
    )
    duplicate_id_threshold = luigi.FloatParameter(
        default=0.01,
        description="data quality: a share of rows whose id (`[dataset] id_column`) an earlier row of the night had "
        "above this alerts; those rows are rejected, the first kept",
    )
    wasserstein_threshold = luigi.FloatParameter(
        default=0.1,
        description="a numeric feature's Wasserstein distance, in the reference's standard deviations (a mean "
        "shifted by 0.2 sd scores 0.2), above this alerts (raised on small nights)",
    )
    prediction_psi_threshold = luigi.FloatParameter(
        default=0.2,
        description="the predictions' population stability index above this alerts (raised on small nights)",
    )
    class_share_threshold = luigi.FloatParameter(
        default=4.0,
        description="classification: a predicted class this many times rarer (a class the model stops predicting) "
        "or commoner tonight than in the reference, beyond sampling noise, alerts (method class_share)",
    )
    min_rows = luigi.IntParameter(default=30, description="a night of fewer rows is scored but never alerts")
    reference = luigi.ChoiceParameter(
        choices=REFERENCES,
        default="training",
        description="what a night is compared with: training (the training split), rolling (the last "
        "`rolling_nights` nights that did not alert) or calendar (the training rows within `calendar_days` of the "
        "night's day of the year; needs a dated `[dataset] time_column`)",
    )
    rolling_nights = luigi.IntParameter(default=7, description="rolling: how many earlier quiet nights")
    calendar_days = luigi.IntParameter(
        default=15,
        description="calendar: days of the year either side of the night's that training rows are taken from",
    )
    policies = luigi.Parameter(
        default="",
        description="per feature, what is checked: all, per_night (the night's values must be training's), range "
        "(only missing, out_of_range, unseen) or off, e.g. `weekday:per_night, month:range`; empty: all for every "
        "feature",
    )

    def requires(self):
        return {"scores": BatchPredict(date=self.date, model_version=self.model)}

    def identity(self) -> dict:
        # A rolling reference is the nights it is built from: other quiet nights, another output.
        # The day's online answers are inputs too: more of them since the check ran, another one.
        identity = {"online_rows": self._online_count()} if self._online_count() else {}
        if self.reference == "rolling":
            identity["rolling"] = [f"{d.isoformat()}/{folder.path.name}" for d, folder in self._quiet()]
        return identity

    def _online_count(self) -> int:
        """The day's online answers by this model that kept their inputs, counted once per instance."""
        if not hasattr(self, "_online_rows"):
            from pipeline.store import online_log

            engine, self._online_rows = recording.reader(), 0
            if engine is not None:
                with engine.connect() as connection:
                    self._online_rows = online_log.count_online(connection, self.date, self.model)
        return self._online_rows

    def _quiet(self) -> list:
        """The quiet nights a rolling reference is built from, found once per task instance."""
        if not hasattr(self, "_quiet_nights"):
            found = quiet_nights(
                layout().stage("monitoring"),
                before=self.date,
                model_version=self.model,
                count=self.rolling_nights,
                min_rows=self.min_rows,
            )
            # A night whose scores `overnight gc` collected (beyond [gc] keep_nights) cannot join.
            self._quiet_nights = [
                (d, f) for d, f in found if layout().scores(d, f.summary()["scores_version"]).is_dir()
            ]
        return self._quiet_nights

    def output(self):
        return luigi.LocalTarget(str(layout().drift(self.date, self.version)))

    def build(self, out: DriftFolder) -> Outcome:
        # scipy loads here, when the stage runs: checking that a night is complete stays fast.
        from pipeline.stages.monitoring import DriftThresholds, alert_line, compare
        from pipeline.stages.policies import suggestion_line
        from pipeline.stages.profiles import prediction_profile

        row = recording.model_row(self.model)
        model, scores = self.model_folder(), self.inputs()["scores"]
        regression = row["task"] == "regression"
        evaluation = EvaluationFolder(Path(row["evaluation_path"]))
        reference = self._reference(model, evaluation, regression)
        (logger.warning if reference.fallback else logger.info)(
            "%s: drift against %s", self.date, reference.description
        )
        thresholds = DriftThresholds(
            psi=self.psi_threshold,
            ks=self.ks_threshold,
            js=self.js_threshold,
            wasserstein=self.wasserstein_threshold,
            missing=self.missing_threshold,
            out_of_range=self.out_of_range_threshold,
            unseen=self.unseen_threshold,
            duplicate_id=self.duplicate_id_threshold,
            prediction_psi=self.prediction_psi_threshold,
            class_share=self.class_share_threshold,
            min_rows=self.min_rows,
        )
        test = evaluation.test_predictions(["prediction"])["prediction"]
        valid, predicted, online = _with_online(
            scores.valid_rows(), _predicted(scores, regression), self._online(model.preprocessor().schema, regression)
        )
        if online:
            logger.info(
                "%s: drift over %d rows of the night's files and %d answered online",
                self.date,
                len(valid) - online,
                online,
            )
        stats, drift = compare(
            valid,
            model.preprocessor().schema,
            reference.features,
            thresholds,
            predicted_classes=predicted.tolist(),
            reference_predictions=reference.predictions
            or prediction_profile((test if regression else test.astype(str)).tolist(), numeric=regression),
            duplicate_ids=_duplicate_ids(scores.summary()),
        )
        stats, drift, policies, suggested = self._with_policies(stats, drift, valid, model, thresholds)
        suggestion = suggestion_line(suggested, model.preprocessor().schema.time_column)
        line = "; ".join(filter(None, [alert_line(drift), suggestion]))
        alerts = int(drift["alert"].sum()) if len(drift) else 0
        summary = {"date": self.date.isoformat(), "model_version": self.model, "alert": line, "alerts": alerts}
        summary |= {"policies": policies, "suggested_policies": suggested, "suggestion": suggestion}
        # What was measured against what: the report shows the reference; a later rolling reference
        # finds this night's scores by their version and skips nights under min_rows.
        measured = {"reference": reference.description, "scores_version": scores.path.name, "rows": len(valid)}
        measured["online_rows"] = online
        out.write(stats, drift, {**summary, **measured})
        if line:
            logger.warning("%s: %s", self.date, line)
        return Outcome(
            metrics=[Metric(f"drift_{r.method}:{r.feature}", r.score, split="batch") for r in drift.itertuples()]
        )

    def _online(self, schema, regression: bool):
        """The day's online answers by this model, their inputs validated as the night's rows are:
        (valid rows, their predictions), or None when there are none."""
        if not self._online_count():
            return None
        from pipeline.stages.validation import validate
        from pipeline.store import online_log
        from tasks.validation import max_image_bytes

        with recording.engine().connect() as connection:
            answered = online_log.online_rows(connection, self.date, self.model)
        sent = _kept_images(answered.drop(columns=["example_id", "prediction", "score"]), schema)
        sent = sent.assign(**{SOURCE_FILE: ONLINE_SOURCE, SOURCE_ROW: range(len(sent))})
        try:
            result = validate(
                sent,
                schema,
                labeled=False,
                require_rows=False,
                max_image_bytes=max_image_bytes(),
                image_root=str(layout().online_images()),
            )
        except DataError as error:  # a column no request sent: the rows cannot be compared
            logger.warning("%s: the online answers are left out of the drift check: %s", self.date, error)
            return None
        if len(result.rejects):  # valid when answered: only a rule changed since says otherwise
            reason = result.rejects[REASON].iloc[0]
            logger.warning(
                "%s: %d online answer(s) left out of the drift check: %s", self.date, len(result.rejects), reason
            )
        kept = answered.iloc[result.valid[SOURCE_ROW].to_numpy()]
        predicted = kept["score"] if regression else kept["prediction"].astype(str)
        return result.valid, predicted.reset_index(drop=True)

    def _with_policies(self, stats, drift, valid, model: ModelFolder, thresholds):
        """(stats, drift, {feature: policy}, {feature: suggested policy}) with `policies` applied."""
        from pipeline.stages.policies import apply_policies, parse_policies, suggestions
        from pipeline.stages.profiles import monitored

        schema, training = model.preprocessor().schema, model.reference()
        features = monitored(schema)
        valued = [feature for feature, column, kind in features if feature == column]
        policies = parse_policies(self.policies, [feature for feature, _, _ in features], valued)
        stats, drift = apply_policies(
            stats, drift, policies, batch=valid, schema=schema, training=training, thresholds=thresholds
        )
        return stats, drift, policies, suggestions(drift, training, policies)

    def _reference(self, model: ModelFolder, evaluation: EvaluationFolder, regression: bool):
        from pipeline.stages import references

        training = model.reference()
        if self.reference == "calendar":
            return references.calendar_reference(
                training,
                self.date,
                schema=model.preprocessor().schema,
                window_days=self.calendar_days,
                min_rows=self.min_rows,
                test_calendar=evaluation.prediction_calendar(),
                numeric=regression,
            )
        if self.reference == "rolling":
            share = references.ROLLING_ROWS // max(len(self._quiet()), 1)  # memory stays flat with the window
            nights = [
                _quiet_night(
                    date, NightScores(layout().scores(date, folder.summary()["scores_version"])), regression, share
                )
                for date, folder in self._quiet()
            ]
            schema = model.preprocessor().schema
            return references.rolling_reference(
                training, nights, wanted=self.rolling_nights, schema=schema, numeric=regression, min_rows=self.min_rows
            )
        return references.training_reference(training)

    def load_rows(self, out: DriftFolder, engine, marker: Marker) -> Outcome:
        from pipeline.store import prediction_log

        prediction_log.record_drift(
            engine, batch_date=self.date, model_version=self.model, stats=out.stats(), drift=out.drift(), marker=marker
        )
        return Outcome()


def _kept_images(sent, schema):
    """The online inputs with each image named by its file under the server's image folder (the
    server records it relative to that folder: pipeline/serving/scoring.py)."""
    root = layout().online_images()
    for column in schema.columns_of("image"):
        if column in sent.columns:
            sent[column] = [str(root / kept) if isinstance(kept, str) else kept for kept in sent[column]]
    return sent


def _with_online(valid, predicted, online):
    """The night's valid rows and predictions with the day's online ones after them; -> (rows,
    predictions, how many were online)."""
    if online is None or not len(online[0]):
        return valid, predicted, 0
    import pandas as pd

    rows, answers = online
    rows = rows[[column for column in valid.columns if column in rows.columns]]
    together = pd.concat([valid, rows], ignore_index=True)
    return together, pd.concat([predicted, answers], ignore_index=True), len(rows)


def _predicted(scores: NightScores, regression: bool):
    predicted = scores.predictions(["prediction", "score"])
    return predicted["score"] if regression else predicted["prediction"].astype(str)


def _duplicate_ids(batch: dict) -> tuple[int, int] | None:
    """(rows rejected for a repeated id, rows read); None for scores from before the count."""
    return (batch["rows_duplicate_id"], batch["rows_in"]) if "rows_duplicate_id" in batch else None


def _quiet_night(date, scores: NightScores, regression: bool, most: int):
    """A quiet night's rows and predictions, each sampled down to `most`."""
    from pipeline.stages.references import QuietNight

    rows, predicted = scores.valid_rows(), _predicted(scores, regression)
    if len(rows) > most:
        rows = rows.sample(n=most, random_state=0)
    if len(predicted) > most:
        predicted = predicted.sample(n=most, random_state=0)
    return QuietNight(date, rows, predicted)


def _feedback_problems(labels, label: str = "label"):
    """Each late label's reason to be rejected, or NaN: a row-level fault stays one row's, so a
    bad line in a labeller's file never stops the night (the database would refuse it whole)."""
    from pipeline.stages.validation import MAX_ID_CHARACTERS

    ids, names, who = labels["example_id"], labels["label"], labels[ANNOTATOR]
    nul = ids.str.contains("\x00", regex=False) | names.str.contains("\x00", regex=False)
    problems = [
        (ids.isna(), "expected an id"),
        (names.isna(), f"expected a label in column {label!r}"),
        (who.isna() | (who.str.strip() == ""), "expected an annotator"),
        (ids.str.len() > MAX_ID_CHARACTERS, f"expected an id of at most {MAX_ID_CHARACTERS} characters"),
        (who.str.len() > ANNOTATOR_LENGTH, f"expected an annotator of at most {ANNOTATOR_LENGTH} characters"),
        (nul | who.str.contains("\x00", regex=False), "expected no NUL characters"),
    ]
    reasons = labels["example_id"].map(lambda _: None).astype(object)
    for bad, reason in problems:
        reasons = reasons.where(~bad.fillna(False).astype(bool) | reasons.notna(), reason)
    return reasons


def _warn_of_overwritten(read, kept, annotator_column: str) -> None:
    """Say when one annotator's label for an example gave way to another line of the same night,
    from another file: two people's files without an annotator column are one annotator's."""
    lost = read.drop(index=kept.index)
    other_file = lost.merge(kept, on=["example_id", ANNOTATOR], suffixes=("", "_kept"))
    other_file = other_file[other_file["source"] != other_file["source_kept"]]
    if len(other_file):
        first = other_file.iloc[0]
        logger.warning(
            "%d label(s) given by one annotator in two files of the night: the last file's kept (e.g. %s on %r, "
            "kept from %s); files from several people need an %r column",
            len(other_file),
            first[ANNOTATOR],
            first["example_id"],
            first["source_kept"],
            annotator_column,
        )


class IngestFeedback(NightParameters, StageTask):
    """Labels that arrived late (`feedback/<date>/*.csv`: id column and label) into `feedback`."""

    stage = "monitoring"
    artifact = FeedbackFolder
    rows = True  # the late labels

    def identity(self) -> dict:
        return {
            "feedback": folder_fingerprint(layout().feedback(self.date)),
            "dataset": dataset_config().as_dict(),
            # Who labeled a row, and the tie-break order the load writes: another setting, another load.
            "labeling": {name: getattr(labeling(), name) for name in ("annotator_column", "default_annotator")}
            | {"tie_order": list(tie_order())},
        }

    def output(self):
        return luigi.LocalTarget(str(layout().feedback_output(self.date, self.version)))

    def build(self, out: FeedbackFolder) -> Outcome:
        from pipeline.stages import raw

        config = dataset_config()
        folder = layout().feedback(self.date)
        files = [file for file in raw.batch_files(folder) if file.suffix.lower() == ".csv"]
        settings = labeling()
        labels = raw.read_feedback(
            files,
            id_column=config.id_column,
            label=config.label,
            missing_values=config.missing_values,
            annotator_column=settings.annotator_column,
            default_annotator=settings.default_annotator,
        )
        reasons = _feedback_problems(labels, config.label)
        unusable = reasons.notna()
        # One label per example and annotator: a person's later line corrects their earlier one.
        usable = labels[~unusable].drop_duplicates(["example_id", ANNOTATOR], keep="last")
        _warn_of_overwritten(labels[~unusable], usable, settings.annotator_column)
        out.write(usable, labels[unusable].assign(**{REASON: reasons[unusable]}))
        logger.info("%s: %d late labels read, %d rejected", self.date, len(usable), int(unusable.sum()))
        return Outcome(rows_in=len(labels), rows_rejected=int(unusable.sum()))

    def load_rows(self, out: FeedbackFolder, engine, marker: Marker) -> Outcome:
        from pipeline.stages.agreement import pair_agreement
        from pipeline.store import labels as labels_store

        # One transaction for the night's files: a bad file leaves no half-loaded night behind.
        labels = out.labels()[["example_id", "label", ANNOTATOR, "source"]]
        source = str(layout().feedback(self.date))
        loaded = labels_store.load_feedback(
            engine, labels, source=source, marker=marker, tie_order=tie_order(), pair_agreement=pair_agreement
        )
        logger.info("%s: %d late labels loaded", self.date, loaded)
        return Outcome()
