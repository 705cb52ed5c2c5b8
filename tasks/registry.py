"""Registry stage: record a trained, evaluated model; promote it if it beats production.

The gate's decision is pipeline/stages/registry.py's; this task gathers the scores it decides on
and carries the decision out in the registry. Both depend on the database (which models it holds,
which one is in production), so the output's version includes the database: each database the
data folder serves gets its own registration and its own registration.json.
"""

from __future__ import annotations

import logging
from pathlib import Path

import luigi

from pipeline.artifacts.model import MODEL, ModelFolder
from pipeline.artifacts.registry import Registration
from pipeline.artifacts.split import SplitManifest
from pipeline.artifacts.validation import ValidatedData
from pipeline.common.metrics import headline_text
from pipeline.errors import DataError
from pipeline.stages.registry import baseline_refusal, decide
from pipeline.store import ledger, markers, registry
from pipeline.store.markers import Marker
from tasks import recording
from tasks.base import ONE_CARD, Outcome, StageTask
from tasks.config import database_key, flag
from tasks.evaluation import EvaluateModel
from tasks.split import SplitData
from tasks.training import TrainModel
from tasks.validation import ValidateData

logger = logging.getLogger(__name__)


class RegisterModel(StageTask):
    """The registration gate: a candidate becomes production only if its headline score on the
    same test split beats production's, scored by the candidate's headline definition, by `margin`;
    the first model is promoted. With
    `require_beats_baseline`, a model that does not beat its baselines never is."""

    stage = "registry"
    artifact = Registration
    gpu = ONE_CARD  # scores the production model on the candidate's test split
    rows = True  # the model's registration, promotion and events

    margin = luigi.FloatParameter(
        default=0.005,
        description="headline points a candidate must beat production by, on the candidate's test split, "
        "production scored by the candidate's headline definition",
    )
    require_beats_baseline = flag(
        default=False,
        description="promote no model whose test headline does not beat its best baseline's, or that the "
        "diagnosis finds below baseline, no better than trivial or unpredictable (nor any model when the "
        "evaluation scored no baselines)",
    )

    def requires(self):
        return {"model": TrainModel(), "evaluation": EvaluateModel(), "validated": ValidateData(), "split": SplitData()}

    def identity(self) -> dict:
        return {"database": database_key()}

    def complete(self) -> bool:
        # The registration of a model whose files are gone, damaged or rebuilt since is not done:
        # running it again rebuilds the model (same version) and records it in the registry.
        model = ModelFolder(Path(self.upstream("model").output().path))
        if not model.path.is_dir() or model.damage() is not None or not super().complete():
            return False
        sealed = model.sealed_sha256(MODEL)
        return sealed is None or recording.model_row_sha256(self.upstream("model").version) == sealed

    def build(self, out: Registration) -> Outcome:
        out.write(self._register(recording.engine()))
        self._registered = True
        return Outcome()

    def load_rows(self, out: Registration, engine, marker: Marker) -> Outcome:
        if not getattr(self, "_registered", False):  # the folder outlived its rows (a database made anew)
            self._register(engine)
        markers.mark(engine, marker)  # register and promote are idempotent: marked once both are done
        return Outcome()

    def _register(self, engine) -> dict:
        """Register the model in this database and carry out the gate's decision; the decision."""
        inputs = self.inputs()
        model: ModelFolder = inputs["model"]
        metrics = inputs["evaluation"].metrics()
        version, candidate = self.upstream("model").version, metrics["headline"]["value"]
        trained_by = ledger.latest_run(engine, "TrainModel", version=version)
        sha256, files, known = model.sha256(), model.hashes(), registry.find(engine, version)
        if known is not None and (known["sha256"] != sha256 or (known["files"] or files) != files):
            # The same version with other bytes: its folder was damaged, moved aside and made again.
            registry.rebuilt(engine, version, sha256=sha256, files=files, actor=registry.current_actor())
        registry.register(
            engine,
            version=version,
            run_id=trained_by and trained_by["run_id"],
            path=str(model.path),
            sha256=sha256,
            files=files,
            task=metrics["task"],
            data_version=self.data_version,
            evaluation_path=str(inputs["evaluation"].path),
            headline=candidate,
            metrics=metrics["splits"],
            actor=registry.current_actor(),
        )
        current = registry.production(engine)
        # Production is scored with the candidate's definition (an empty headline's depends on the
        # class shares, pipeline/stages/evaluation.py resolve_headline), never one of its own.
        definition = metrics["headline"]["definition"]
        decision = decide(
            version,
            candidate,
            margin=self.margin,
            baseline_refusal=self._baseline_refusal(metrics),
            headline_name=headline_text(definition),
            **self._incumbent(current, version, definition),
        )
        if decision.promoted and (current is None or current["version"] != version):
            registry.promote(engine, version, actor=registry.current_actor(), reason=decision.reason)
        logger.info("model %s: %s", version, decision.reason)
        return {"version": version, "headline": candidate, "headline_definition": definition, **decision.as_dict()}

    def _baseline_refusal(self, metrics: dict) -> str:
        if not self.require_beats_baseline:
            return ""
        return baseline_refusal(metrics["headline"]["value"], metrics.get("baselines") or {}, metrics["diagnosis"])

    def _incumbent(self, current: dict | None, version: str, definition: dict[str, float]) -> dict:
        """What the gate knows of the production model: its version and its score on this test split,
        by the candidate's headline definition."""
        if current is None or current["version"] == version:
            return {"production": current and current["version"]}
        try:
            score = self._score_production(current, definition)
        except DataError as error:
            return {"production": current["version"], "scoring_error": str(error)}
        return {"production": current["version"], "production_headline": score}

    def _score_production(self, current: dict, definition: dict[str, float]) -> float:
        from pipeline.stages.evaluation import headline_on_table

        validated: ValidatedData = self.inputs()["validated"]
        manifest: SplitManifest = self.inputs()["split"]
        test = manifest.parts(validated.table())["test"]
        production = ModelFolder(Path(current["path"]))
        if not production.path.is_dir():
            raise DataError(f"production model {current['version']}'s folder {production.path} is gone")
        return headline_on_table(
            production.load_model(), production.preprocessor(), test, definition=definition, name=current["path"]
        )
