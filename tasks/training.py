"""Training stage: a Keras model folder (model.keras plus its preprocessing, reference and records)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import luigi

from pipeline.artifacts.features import FeatureArrays
from pipeline.artifacts.model import ModelFolder
from pipeline.common.files import file_sha256
from pipeline.common.metrics import Metric
from tasks.base import ALL_CARDS, Outcome, StageTask
from tasks.config import flag, layout, settings_from
from tasks.features import FitPreprocessor

# Keras history columns -> (split, metric name) in run_metrics.
HISTORY_METRICS = {
    "loss": ("train", "loss"),
    "val_loss": ("validation", "val_loss"),
    "accuracy": ("train", "accuracy"),
    "val_accuracy": ("validation", "accuracy"),
    "mae": ("train", "mae"),
    "val_mae": ("validation", "mae"),
}


class TrainModel(StageTask):
    """Fit the configured architecture; resumes from its last finished epoch after a kill."""

    stage = "training"
    artifact = ModelFolder
    gpu = ALL_CARDS  # MirroredStrategy over every visible card

    architecture = luigi.Parameter(
        default="auto",
        description="auto (a branch for every input, whatever its kind), mlp, cnn, text or mobilenet_v3_small "
        "(keras.applications' MobileNetV3-Small for one image input of 32 px or more, built without weights): "
        "a module of `models/`",
    )
    epochs = luigi.IntParameter(default=30, description="passes over the training split, at most")
    batch_size = luigi.IntParameter(default=64, description="examples per optimizer step")
    learning_rate = luigi.FloatParameter(default=1e-3, description="AdamW's learning rate at the start")
    learning_rate_schedule = luigi.ChoiceParameter(
        choices=["plateau", "cosine", "constant"],
        default="plateau",
        description="plateau: halve the rate after 2 epochs without a better val_loss; cosine: decay it to 0 over "
        "the epochs; constant",
    )
    weight_decay = luigi.FloatParameter(default=1e-4, description="AdamW's weight decay")
    seed = luigi.IntParameter(default=42, description="seed of the initial weights, the shuffling and the augmentation")
    deterministic = flag(
        default=False, description="TensorFlow op determinism: the same weights again (slower, no XLA)"
    )
    class_weights = flag(default=False, description="weigh each class inversely to its frequency in the training split")
    label_smoothing = luigi.FloatParameter(default=0.0, description="classification: label smoothing; 0: none")
    regression_loss = luigi.ChoiceParameter(
        choices=["mse", "huber"],
        default="mse",
        description="regression: mse or huber, on the target standardised with the training split's mean and "
        "spread (predictions stay in the target's units)",
    )
    patience = luigi.IntParameter(
        default=5,
        description="early stopping: epochs without a better val_loss before training stops, keeping the best "
        "epoch's weights; 0 turns it off. Neither it nor the plateau schedule acts in the first 300 optimizer steps",
    )
    augmentation = luigi.Parameter(
        default="",
        description="random image changes while training only, any of flip, rotation, brightness, contrast "
        "(comma-separated); empty: none (a flip turns one digit into another)",
    )
    initial_weights = luigi.Parameter(
        default="",
        description="a file to fine-tune from: a .keras model (layers of the same name and shape take its weights, "
        "the others start afresh), a .weights.h5 file of the same architecture, or for mobilenet_v3_small Keras' "
        "no-top .h5 file fetched beforehand; nothing is downloaded, and the file's bytes are part of the version. "
        "Empty: random initial weights",
    )
    debug = flag(
        default=False, description="fit `debug_examples` examples only; the run fails unless the loss goes near zero"
    )
    debug_examples = luigi.IntParameter(default=8, description="how many examples `debug` fits")
    search_seconds = luigi.IntParameter(
        default=600,
        description="auto, from 1,000 training rows: after its defaults, the candidates that apply to the data "
        "(piecewise-linear numbers, a text's bag of words alone) are trained while the seconds spent stay under "
        "this, and the best validation headline wins (training.json says why); 0: the defaults only",
    )
    mixed_precision = flag(
        default=False, significant=False, description="float16 compute on a GPU; a speed-up, not part of the version"
    )
    xla = flag(
        default=False,
        significant=False,
        description="compile with XLA (not with `deterministic`); a speed-up, not part of the version",
    )

    def requires(self):
        return {"features": FitPreprocessor()}

    def identity(self) -> dict:
        # The file's bytes, not only its path: new weights under the same name train anew.
        if not self.initial_weights or not Path(self.initial_weights).is_file():
            return {}  # a missing file fails the training with its one line
        return {"initial_weights_sha256": file_sha256(Path(self.initial_weights))}

    def build(self, out: ModelFolder) -> Outcome:
        from pipeline.stages.evaluation import split_metrics

        features: FeatureArrays = self.inputs()["features"]
        preprocessor, validation = features.preprocessor(), features.arrays("validation")
        config = self.training_config()
        work_dir = layout().training_work(self.version)
        found = self._search(features, config, work_dir)
        result = found.best
        # What tuning ranks trials by: the evaluation's own metrics, on the validation split.
        scores = split_metrics(result.model, validation, preprocessor)
        record = {
            "config": asdict(config),
            "resumed_from_epoch": result.resumed_from_epoch,
            "epochs_run": len(result.history.get("loss", [])),
            "restored_epoch": result.restored_epoch,
            "debug": result.debug,
            "validation": scores,
            **found.record,
            "features_version": self.upstream("features").version,
            "data_version": self.data_version,
        }
        # The model folder is what serves: it carries its preprocessing and drift reference.
        out.write(
            result.model,
            preprocessor=preprocessor,
            reference=features.reference(),
            training=record,
            history_csv=result.history_csv,
            tensorboard=result.tensorboard,
        )
        shutil.rmtree(work_dir, ignore_errors=True)
        final = [Metric(name, value, split="validation") for name, value in scores.items()]
        return Outcome(metrics=history_metrics(result.history) + final)

    def _search(self, features: FeatureArrays, config, work_dir: Path):
        """auto's candidates (pipeline/stages/candidates.py), each trained in a folder of its own,
        ranked by the validation headline EvaluateModel would choose."""
        from pipeline.stages.candidates import DEFAULTS, candidates, search
        from pipeline.stages.evaluation import headline_score, resolve_headline, split_metrics
        from pipeline.stages.training import train
        from tasks.evaluation import EvaluateModel

        preprocessor, validation, train_data = (
            features.preprocessor(),
            features.arrays("validation"),
            features.arrays("train"),
        )
        choices = candidates(preprocessor.model_spec(), config.architecture, len(train_data.example_ids))
        if config.debug or config.initial_weights or config.search_seconds <= 0:
            choices = [DEFAULTS]  # the weights fit the defaults; a debug run proves the loop, not a choice
        chosen = resolve_headline(EvaluateModel().headline, preprocessor.task, train_data.labels, preprocessor.classes)
        planned = len(choices) * config.epochs

        def fit(candidate, folder: Path):
            offset = choices.index(candidate) * config.epochs
            return train(
                train_data,
                validation,
                preprocessor,
                config,
                work_dir=folder,
                changes=candidate.changes,
                on_epoch=lambda done, total: self.progress(
                    offset + done, planned, f"{candidate.name}: epoch {done} of {total}"
                ),
            )

        return search(
            choices,
            fit,
            lambda result: headline_score(split_metrics(result.model, validation, preprocessor), chosen["definition"]),
            work_dir=work_dir,
            budget_s=config.search_seconds,
            headline=", ".join(chosen["definition"]),
        )

    def training_config(self):
        from pipeline.stages.training import TrainingConfig

        return settings_from(TrainingConfig, self, verbose=1 if sys.stdout.isatty() else 2)


def history_metrics(history: dict[str, list[float]]) -> list[Metric]:
    return [
        Metric(name, value, split=split, epoch=epoch)
        for column, (split, name) in HISTORY_METRICS.items()
        for epoch, value in enumerate(history.get(column, []), start=1)
    ]
