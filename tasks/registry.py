"""Registry stage: record a trained, evaluated model; promote it if it beats production."""

from __future__ import annotations

import logging
from pathlib import Path

import luigi
import pandas as pd

from pipeline.common.columns import SPLIT
from pipeline.errors import DataError
from pipeline.stages.fingerprint import file_sha256
from pipeline.store import ledger, registry
from tasks import recording
from tasks.base import Outcome, StageTask, read_json, write_json
from tasks.evaluation import METRICS, EvaluateModel
from tasks.split import MANIFEST, SplitData
from tasks.training import TrainModel
from tasks.validation import VALID, ValidateData

logger = logging.getLogger(__name__)

REGISTRATION = "registration.json"


class RegisterModel(StageTask):
    """The registration gate: a candidate becomes production only if its headline score on the
    same test split beats production's by `margin`; the first model is promoted."""

    folder = "07_registry"
    code = ("pipeline/store/registry.py",)
    expected_files = (REGISTRATION,)

    margin = luigi.FloatParameter(default=0.005, description="headline points a candidate must win by")

    def requires(self):
        return [TrainModel(), EvaluateModel(), ValidateData(), SplitData()]

    def build(self, out_dir: Path) -> Outcome:
        model_dir, evaluation_dir = self.input_dir(0), self.input_dir(1)
        training, evaluation = self.requires()[0], self.requires()[1]
        metrics = read_json(evaluation_dir / METRICS)
        candidate = metrics["headline"]["value"]
        engine = recording.engine()
        trained_by = ledger.latest_run(engine, "TrainModel", version=training.version)
        registry.register(
            engine,
            version=training.version,
            run_id=trained_by and trained_by["run_id"],
            path=str(model_dir),
            sha256=file_sha256(model_dir / "model.keras"),
            task=metrics["task"],
            data_version=self.data_version,
            evaluation_path=str(evaluation_dir),
            headline=candidate,
            metrics=metrics["splits"],
            actor=registry.current_actor(),
        )
        decision = self._decide(engine, training.version, candidate, evaluation.headline)
        logger.info("model %s: %s", training.version, decision["reason"])
        write_json(out_dir / REGISTRATION, {"version": training.version, "headline": candidate, **decision})
        return Outcome()

    def _decide(self, engine, version: str, candidate: float, headline: str) -> dict:
        current = registry.production(engine)
        if current is None:
            return self._promote(engine, version, "the first model is promoted")
        if current["version"] == version:
            return {"promoted": True, "reason": "already the production model", "production": version}
        try:
            incumbent = self._score_production(current, headline)
        except DataError as error:
            return {
                "promoted": False,
                "production": current["version"],
                "reason": f"stays a candidate: {error}; promote it by hand if it should serve",
            }
        verdict = (
            f"headline {candidate:.4f} vs production {current['version']} {incumbent:.4f} "
            f"on the same test split (margin {self.margin})"
        )
        if candidate > incumbent + self.margin:
            return {**self._promote(engine, version, f"gate passed: {verdict}"), "production_headline": incumbent}
        return {
            "promoted": False,
            "production": current["version"],
            "production_headline": incumbent,
            "reason": f"stays a candidate: {verdict}",
        }

    def _promote(self, engine, version: str, reason: str) -> dict:
        registry.promote(engine, version, actor=registry.current_actor(), reason=reason)
        return {"promoted": True, "reason": reason, "production": version}

    def _score_production(self, current: dict, headline: str) -> float:
        from pipeline.stages.evaluation import headline_on_table

        validated, split_dir = self.input_dir(2), self.input_dir(3)
        table = pd.read_parquet(validated / VALID)
        test = table[pd.read_parquet(split_dir / MANIFEST)[SPLIT].to_numpy() == "test"]
        return headline_on_table(current["path"], test, headline=headline)
