"""Registry stage: record a trained, evaluated model; promote it if it beats production.

The gate's decision is pipeline/stages/registry.py's; this task gathers the scores it decides on
and carries the decision out in the registry.
"""

from __future__ import annotations

import logging
from pathlib import Path

import luigi

from pipeline.artifacts.model import ModelFolder
from pipeline.artifacts.registry import Registration
from pipeline.artifacts.split import SplitManifest
from pipeline.artifacts.validation import ValidatedData
from pipeline.errors import DataError
from pipeline.stages.registry import decide
from pipeline.store import ledger, registry
from tasks import recording
from tasks.base import ONE_CARD, Outcome, StageTask
from tasks.evaluation import EvaluateModel
from tasks.split import SplitData
from tasks.training import TrainModel
from tasks.validation import ValidateData

logger = logging.getLogger(__name__)


class RegisterModel(StageTask):
    """The registration gate: a candidate becomes production only if its headline score on the
    same test split beats production's by `margin`; the first model is promoted."""

    stage = "registry"
    artifact = Registration
    gpu = ONE_CARD  # scores the production model on the candidate's test split

    margin = luigi.FloatParameter(default=0.005, description="headline points a candidate must win by")

    def requires(self):
        return {"model": TrainModel(), "evaluation": EvaluateModel(), "validated": ValidateData(), "split": SplitData()}

    def build(self, out: Registration) -> Outcome:
        inputs = self.inputs()
        model: ModelFolder = inputs["model"]
        metrics = inputs["evaluation"].metrics()
        version, candidate = self.upstream("model").version, metrics["headline"]["value"]
        engine = recording.engine()
        trained_by = ledger.latest_run(engine, "TrainModel", version=version)
        registry.register(
            engine,
            version=version,
            run_id=trained_by and trained_by["run_id"],
            path=str(model.path),
            sha256=model.sha256(),
            task=metrics["task"],
            data_version=self.data_version,
            evaluation_path=str(inputs["evaluation"].path),
            headline=candidate,
            metrics=metrics["splits"],
            actor=registry.current_actor(),
        )
        current = registry.production(engine)
        decision = decide(version, candidate, margin=self.margin, **self._incumbent(current, version))
        if decision.promoted and (current is None or current["version"] != version):
            registry.promote(engine, version, actor=registry.current_actor(), reason=decision.reason)
        logger.info("model %s: %s", version, decision.reason)
        out.write({"version": version, "headline": candidate, **decision.as_dict()})
        return Outcome()

    def _incumbent(self, current: dict | None, version: str) -> dict:
        """What the gate knows of the production model: its version and its score on this test split."""
        if current is None or current["version"] == version:
            return {"production": current and current["version"]}
        try:
            score = self._score_production(current)
        except DataError as error:
            return {"production": current["version"], "scoring_error": str(error)}
        return {"production": current["version"], "production_headline": score}

    def _score_production(self, current: dict) -> float:
        from pipeline.stages.evaluation import headline_on_table

        validated: ValidatedData = self.inputs()["validated"]
        manifest: SplitManifest = self.inputs()["split"]
        test = manifest.parts(validated.table())["test"]
        production = ModelFolder(Path(current["path"]))
        headline = self.upstream("evaluation").headline
        return headline_on_table(
            production.load_model(), production.preprocessor(), test, headline=headline, name=current["path"]
        )
