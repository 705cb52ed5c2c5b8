"""Training stage: a Keras model directory (model.keras plus JSON side files)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import luigi

from pipeline.common.metrics import Metric
from tasks.base import Outcome, StageTask, read_json, write_json
from tasks.config import data_root
from tasks.features import PREPROCESSOR, REFERENCE, FitPreprocessor

TRAINING = "training.json"
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

    folder = "05_training"
    code = ("pipeline/stages/training.py", "pipeline/stages/tfdata.py", "models")
    expected_files = ("model.keras", TRAINING, PREPROCESSOR, REFERENCE, "history.csv")

    architecture = luigi.Parameter(default="auto")
    epochs = luigi.IntParameter(default=30)
    batch_size = luigi.IntParameter(default=64)
    learning_rate = luigi.FloatParameter(default=1e-3)
    weight_decay = luigi.FloatParameter(default=1e-4)
    seed = luigi.IntParameter(default=42)
    deterministic = luigi.BoolParameter(default=False)
    class_weights = luigi.BoolParameter(default=False)
    label_smoothing = luigi.FloatParameter(default=0.0)
    regression_loss = luigi.ChoiceParameter(choices=["mse", "huber"], default="mse")
    patience = luigi.IntParameter(default=5, description="early stopping; 0 turns it off")
    debug = luigi.BoolParameter(default=False, description="fit a handful of examples; the loss must reach ~0")
    debug_examples = luigi.IntParameter(default=8)
    mixed_precision = luigi.BoolParameter(default=False, significant=False)
    xla = luigi.BoolParameter(default=False, significant=False)

    def requires(self):
        return FitPreprocessor()

    @property
    def work_dir(self) -> Path:
        """Checkpoints and logs that must outlive a killed run: outside the temporary output."""
        return data_root() / self.folder / ".work" / self.version

    def build(self, out_dir: Path) -> Outcome:
        from pipeline.stages.features import load_arrays
        from pipeline.stages.training import TrainingConfig, train

        features_dir = self.input_dir()
        preprocessor = read_json(features_dir / PREPROCESSOR)
        train_inputs, train_labels, _ = load_arrays(features_dir / "train.npz")
        validation_inputs, validation_labels, _ = load_arrays(features_dir / "validation.npz")
        config = self.training_config(TrainingConfig)
        result = train(
            (train_inputs, train_labels),
            (validation_inputs, validation_labels),
            preprocessor,
            config,
            model_dir=out_dir,
            work_dir=self.work_dir,
            on_epoch=lambda done, total: self.progress(done, total, f"epoch {done} of {total}"),
        )
        # The model folder is what serves: it carries its preprocessing and drift reference.
        for side_file in (PREPROCESSOR, REFERENCE):
            shutil.copy(features_dir / side_file, out_dir / side_file)
        write_json(
            out_dir / TRAINING,
            {
                "config": asdict(config),
                "resumed_from_epoch": result.resumed_from_epoch,
                "epochs_run": len(result.history.get("loss", [])),
                "debug": result.debug,
                "validation": result.validation_metrics,
                "features_version": self.requires().version,
                "data_version": self.data_version,
            },
        )
        shutil.rmtree(self.work_dir, ignore_errors=True)
        final = [Metric(name, value, split="validation") for name, value in (result.validation_metrics or {}).items()]
        return Outcome(metrics=history_metrics(result.history) + final)

    def training_config(self, config_class):
        return config_class(
            architecture=self.architecture,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            seed=self.seed,
            deterministic=self.deterministic,
            class_weights=self.class_weights,
            label_smoothing=self.label_smoothing,
            regression_loss=self.regression_loss,
            patience=self.patience,
            debug=self.debug,
            debug_examples=self.debug_examples,
            mixed_precision=self.mixed_precision,
            xla=self.xla,
            verbose=1 if sys.stdout.isatty() else 2,
        )


def history_metrics(history: dict[str, list[float]]) -> list[Metric]:
    return [
        Metric(name, value, split=split, epoch=epoch)
        for column, (split, name) in HISTORY_METRICS.items()
        for epoch, value in enumerate(history.get(column, []), start=1)
    ]
