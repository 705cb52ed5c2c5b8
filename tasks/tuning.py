"""TuneModel: TrainModel trials as parallel Luigi tasks; the best by validation headline wins.

luigi --module tasks TuneModel --workers 2
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import luigi

from pipeline.artifacts.features import FeatureArrays
from pipeline.artifacts.model import ModelFolder
from pipeline.artifacts.tuning import TrialOutcome, TuningSummary
from pipeline.common.metrics import Metric
from pipeline.stages import tuning
from tasks.base import ALL_CARDS, Outcome, StageTask
from tasks.base.resources import gpu_units
from tasks.base.startup import PreparedTask
from tasks.config import layout
from tasks.evaluation import EvaluateModel
from tasks.features import FitPreprocessor
from tasks.training import TrainModel

logger = logging.getLogger(__name__)


class TuneTrial(PreparedTask, luigi.Task):
    """One trial: a TrainModel with these parameters. A failed trial is an outcome (its `runs`
    row says failed), not the end of the search."""

    params_json = luigi.Parameter(description="the trial's TrainModel parameters, as JSON text")

    @property
    def resources(self) -> dict[str, int]:
        # The cards its training mirrors over; without a GPU, --workers alone limits parallel trials.
        return gpu_units(ALL_CARDS)

    def requires(self):
        return FitPreprocessor()

    def trial(self) -> TrainModel:
        return TrainModel.from_str_params(json.loads(self.params_json))

    @property
    def version(self) -> str:
        return self.trial().version

    @property
    def data_version(self) -> str | None:
        return self.trial().data_version

    def output(self):
        return luigi.LocalTarget(str(layout().trial(self.version)))

    def run(self):
        trial = self.trial()
        trial.set_progress_percentage, trial.set_status_message = self.set_progress_percentage, self.set_status_message
        outcome = {"params": json.loads(self.params_json), "version": trial.version, "status": "succeeded"}
        if not trial.complete():
            try:
                trial.run()  # the TrainModel run itself: atomic output and a runs row
            except Exception as error:  # noqa: BLE001 - any trial may fail; the search goes on
                logger.warning("trial %s failed: %s", self.params_json, error)
                outcome.update(status="failed", error=f"{type(error).__name__}: {error}".splitlines()[0])
        if outcome["status"] == "succeeded":
            outcome.update(_scores(ModelFolder(Path(trial.output().path)), FeatureArrays(Path(self.input().path))))
        with self.output().temporary_path() as temporary:
            TrialOutcome(Path(temporary)).write(outcome)


def _scores(model: ModelFolder, features: FeatureArrays) -> dict:
    """A trial's validation figures and headline, the headline chosen as EvaluateModel chooses it."""
    from pipeline.stages.evaluation import headline_score, resolve_headline, split_metrics  # scikit-learn: lazily

    preprocessor = model.preprocessor()
    validation = model.training()["validation"]
    chosen = resolve_headline(
        EvaluateModel().headline, preprocessor.task, features.labels("train"), preprocessor.classes
    )
    if any(name not in validation for name in chosen["definition"]):
        # Trained before the metric was recorded (roc_auc, balanced_accuracy): scored again.
        validation = split_metrics(model.load_model(), features.arrays("validation"), preprocessor)
    return {
        "path": str(model.path),
        "validation": validation,
        "validation_headline": headline_score(validation, chosen["definition"]),
        "headline": chosen,
    }


class TuneModel(StageTask):
    """Train every trial of the search space; report the best by validation headline score."""

    stage = "training"
    artifact = TuningSummary

    space = luigi.Parameter(
        default="learning_rate: 0.0003, 0.001, 0.003; batch_size: 32, 64",
        description="the TrainModel parameters searched and their values: `parameter: value, value; parameter: "
        "value, ...`",
    )
    strategy = luigi.ChoiceParameter(
        choices=list(tuning.STRATEGIES),
        default="grid",
        description="grid: every combination of the space's values; random: `trials` combinations drawn at random",
    )
    trials = luigi.IntParameter(
        default=0, description="grid: the first this many combinations (0: all); random: this many (0: one)"
    )
    seed = luigi.IntParameter(default=0, description="seed of the random choice of trials")

    def requires(self):
        space = tuning.parse_space(self.space)
        chosen = tuning.trials(space, strategy=self.strategy, count=self.trials, seed=self.seed)
        return {
            f"trial {number}": TuneTrial(params_json=tuning.trial_key(params)) for number, params in enumerate(chosen)
        }

    def output(self):
        return luigi.LocalTarget(str(layout().tuning(self.version)))

    def build(self, out: TuningSummary) -> Outcome:
        outcomes = [TrialOutcome(Path(target.path)).read() for target in self.input().values()]
        best = tuning.best_trial(outcomes)
        failed = [o for o in outcomes if o["status"] != "succeeded"]
        if best is None:
            raise RuntimeError(f"all {len(outcomes)} trials failed; first error: {failed[0].get('error')}")
        command = "luigi --module tasks RegisterModel " + " ".join(
            f"--TrainModel-{name.replace('_', '-')} {value}" for name, value in best["params"].items()
        )
        out.write({"best": best, "next": command, "trials": outcomes})
        logger.info(
            "best of %d trials (%d failed): %s, validation headline %.4f; evaluate and register it with: %s",
            len(outcomes),
            len(failed),
            best["params"],
            best["validation_headline"],
            command,
        )
        return Outcome(
            metrics=[
                Metric("headline", best["validation_headline"], split="validation"),
                Metric("trials", len(outcomes), split="validation"),
                Metric("trials_failed", len(failed), split="validation"),
            ]
        )
