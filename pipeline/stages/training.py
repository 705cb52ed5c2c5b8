"""Training stage: fit a Keras model on the stored features. Imports TensorFlow: run() only.

The loop knows nothing of the domain: checkpoints, history, TensorBoard and progress are
callbacks, and the caller decides where they go. `work_dir` must be stable across reruns so a
killed training resumes from its last finished epoch (Keras' BackupAndRestore).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from models.spec import ArchitectureSettings, parse_augmentation
from pipeline.common.files import write_file
from pipeline.stages.checkpoints import durable_backup
from pipeline.stages.features import SplitArrays
from pipeline.stages.history import HISTORY_FILE, read_history
from pipeline.stages.initial_weights import load_initial_weights
from pipeline.stages.preprocessor import Preprocessor

logger = logging.getLogger(__name__)

DEBUG_NEAR_ZERO = 0.05  # a debug run must bring the training loss below this


@dataclass(frozen=True)
class TrainingConfig:
    architecture: str = "auto"
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    # plateau: halve it after 2 epochs without a better val_loss; cosine: decay to 0 over the
    # epochs; constant: as given
    learning_rate_schedule: str = "plateau"
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    seed: int = 42
    deterministic: bool = False  # op determinism: identical weights on CPU; slower, no XLA
    class_weights: bool = False  # weigh classes inversely to their frequency
    label_smoothing: float = 0.0
    regression_loss: str = "mse"  # or "huber"
    patience: int = 5  # epochs without a better val_loss before stopping; 0 turns it off
    augmentation: str = ""  # e.g. "flip, rotation, brightness, contrast" (models/spec.py)
    initial_weights: str = ""  # a .keras model or .weights.h5 file to start from (stages/initial_weights.py)
    debug: bool = False  # train on a handful of examples: the loss must go near zero
    debug_examples: int = 8
    mixed_precision: bool = False  # float16 compute on a GPU
    xla: bool = False  # compile with XLA; ignored in deterministic mode
    # auto's candidates (pipeline/stages/candidates.py) are trained while the time spent stays
    # under this; 0 trains the defaults only
    search_seconds: int = 600
    verbose: int = 2  # Keras: 1 is a progress bar (a terminal), 2 a line per epoch


@dataclass(frozen=True)
class TrainingResult:
    model: object  # the fitted keras.Model, best epoch's weights when early stopping restored them
    history: dict[str, list[float]]  # per epoch, every epoch, resumed ones included
    resumed_from_epoch: int  # 0 for a fresh start
    history_csv: Path  # the per-epoch CSV, in the work folder
    tensorboard: Path  # the TensorBoard logs, in the work folder
    debug: dict | None = None  # first and last loss of a debug run
    restored_epoch: int | None = None  # the epoch (from 1) whose weights early stopping put back; None: the last's


def train(
    train_data: SplitArrays,
    validation_data: SplitArrays,
    preprocessor: Preprocessor,
    config: TrainingConfig,
    *,
    work_dir: Path,
    on_epoch: Callable[[int, int], None] | None = None,
    changes: dict | None = None,
) -> TrainingResult:
    """Fit a model of the configured architecture; the caller saves it.

    Args:
        train_data, validation_data: the features stage's arrays of the two splits.
        work_dir: stable folder for checkpoints, the history CSV and TensorBoard logs: a
            killed training started again with the same folder resumes after its last epoch.
        on_epoch: called with (epochs done, epochs planned) after each epoch.
        changes: ArchitectureSettings fields a candidate changes (pipeline/stages/candidates.py).

    Raises:
        RuntimeError: a debug run did not drive the loss near zero.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep CUDA probing noise out of the run log
    import keras
    import tensorflow as tf

    import models
    from pipeline.stages.tfdata import make_dataset

    _seed_everything(config, keras, tf)
    settings = ArchitectureSettings(
        augmentation=parse_augmentation(config.augmentation), seed=config.seed, **(changes or {})
    )
    if config.debug:
        train_data = validation_data = _first(train_data, config.debug_examples)
        config = replace(config, epochs=max(config.epochs, 150), patience=0, class_weights=False)
        settings = replace(settings, dropout=0.0)
    backup_dir = work_dir / "backup"
    finished = _finished(work_dir, keras)
    if finished is not None:
        return finished
    if not _has_checkpoint(work_dir):
        _clear(work_dir)  # leftovers of a run that stopped before its first epoch's checkpoint
    work_dir.mkdir(parents=True, exist_ok=True)

    spec = preprocessor.model_spec()
    with _strategy(tf).scope():
        model = models.build_model(config.architecture, spec, settings)
        model.compile(
            optimizer=keras.optimizers.AdamW(
                _learning_rate(config, len(train_data.example_ids), keras), weight_decay=config.weight_decay
            ),
            loss=_loss(spec, config, keras),
            metrics=_metrics(spec.task, keras),
            jit_compile=config.xla and not config.deterministic,
        )
        if config.initial_weights:  # a checkpoint restored below still wins: it is later training
            load_initial_weights(model, config.initial_weights)
    train_set = make_dataset(
        *_targets(train_data, spec), preprocessor, batch_size=config.batch_size, shuffle=True, seed=config.seed
    )
    validation_set = make_dataset(*_targets(validation_data, spec), preprocessor, batch_size=config.batch_size)
    start: dict[str, int] = {}  # the first epoch this process runs: > 0 when a checkpoint was restored
    steps_per_epoch = max(1, -(-len(train_data.example_ids) // config.batch_size))
    callbacks = _callbacks(config, work_dir, backup_dir, start, on_epoch, keras, steps_per_epoch)
    model.fit(
        train_set,
        validation_data=validation_set,
        epochs=config.epochs,
        callbacks=callbacks,
        class_weight=_class_weights(train_data.labels, spec.n_outputs) if config.class_weights else None,
        shuffle=False,
        verbose=config.verbose,
    )  # the dataset shuffles itself

    history = read_history(work_dir / HISTORY_FILE)
    debug = _debug_verdict(history) if config.debug else None
    resumed_from = start.get("epoch", len(history.get("loss", [])))
    if resumed_from:
        logger.info("resumed from a checkpoint after epoch %d", resumed_from)
    restored = _restored_epoch(callbacks, keras)
    if restored is not None:
        logger.info("early stopping kept the weights of epoch %d of %d", restored, len(history.get("loss", [])))
    _keep_finished(model, work_dir, {"resumed_from_epoch": resumed_from, "restored_epoch": restored, "debug": debug})
    return TrainingResult(
        model, history, resumed_from, work_dir / HISTORY_FILE, work_dir / "tensorboard", debug, restored
    )


# A finished training's model and record, kept in the work folder until the caller's output is in
# place: a kill or a full disk while the model folder is written then costs a rerun no epoch. The
# record is written last, so its presence says the model file is whole.
FINISHED_MODEL, FINISHED_RECORD = "finished.keras", "finished.json"


def _keep_finished(model, work_dir: Path, record: dict) -> None:
    """Save the model (its restored best weights) and the record, then drop the epoch checkpoints."""
    partial = work_dir / f"partial-{FINISHED_MODEL}"  # Keras wants the .keras suffix
    model.save(partial)
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, work_dir / FINISHED_MODEL)
    write_file(work_dir / FINISHED_RECORD, json.dumps(record).encode(), private=False, replace=True)
    shutil.rmtree(work_dir / "backup", ignore_errors=True)


def _finished(work_dir: Path, keras) -> TrainingResult | None:
    """The training this work folder finished before its output was written, or None."""
    if not (work_dir / FINISHED_RECORD).is_file():
        return None
    record = json.loads((work_dir / FINISHED_RECORD).read_text())
    model = keras.saving.load_model(work_dir / FINISHED_MODEL, safe_mode=True, compile=False)
    history = read_history(work_dir / HISTORY_FILE)
    epochs = len(history.get("loss", []))
    logger.info(
        "training had finished (%d epochs) before its output was written: its model is taken from %s",
        epochs,
        work_dir / FINISHED_MODEL,
    )
    return TrainingResult(
        model,
        history,
        epochs,
        work_dir / HISTORY_FILE,
        work_dir / "tensorboard",
        record["debug"],
        record["restored_epoch"],
    )


def _seed_everything(config: TrainingConfig, keras, tf) -> None:
    keras.utils.set_random_seed(config.seed)  # Python, NumPy and TensorFlow
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")


def _strategy(tf):
    """All visible GPUs when there are several (each step's batch split between them); the default
    device otherwise. CUDA_VISIBLE_DEVICES chooses the cards."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) < 2:
        return tf.distribute.get_strategy()
    logger.info("training on %d GPUs (MirroredStrategy): %s", len(gpus), ", ".join(gpu.name for gpu in gpus))
    return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])


def _first(data: SplitArrays, count: int) -> SplitArrays:
    return SplitArrays(
        {name: values[:count] for name, values in data.features.items()}, data.labels[:count], data.example_ids[:count]
    )


def _targets(data: SplitArrays, spec) -> tuple[dict, np.ndarray]:
    """One-hot labels for classification (label smoothing needs them), float targets otherwise."""
    features, labels = data.features, data.labels
    if spec.task == "classification":
        known = labels >= 0  # a class unseen in training cannot be learned or scored
        features = {name: values[known] for name, values in features.items()}
        return features, np.eye(spec.n_outputs, dtype="float32")[labels[known]]
    return features, labels.astype("float32")


def _loss(spec, config: TrainingConfig, keras):
    if spec.task == "classification":
        return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing)
    if config.regression_loss == "huber":
        return _standardized(keras.losses.Huber(), spec.target_mean, spec.target_std)
    if config.regression_loss == "mse":
        return _standardized(keras.losses.MeanSquaredError(), spec.target_mean, spec.target_std)
    raise ValueError(f"regression_loss must be mse or huber, not {config.regression_loss!r}")


SCHEDULES = ("plateau", "cosine", "constant")
PLATEAU_PATIENCE = 2  # epochs without a better val_loss before the learning rate halves
MIN_STEPS = 300  # optimizer steps before early stopping or the plateau schedule may act


def _learning_rate(config: TrainingConfig, rows: int, keras):
    """The optimizer's learning rate: a cosine decay over every planned step, or a number."""
    if config.learning_rate_schedule not in SCHEDULES:
        raise ValueError(
            f"learning_rate_schedule must be one of {', '.join(SCHEDULES)}, not {config.learning_rate_schedule!r}"
        )
    if config.learning_rate_schedule != "cosine":
        return config.learning_rate
    steps = config.epochs * max(1, -(-rows // config.batch_size))
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps)


def _standardized(loss, mean: float, std: float):
    """A regression loss in units of the training target's spread (the preprocessor's statistics).

    The model predicts in label units (its last layer rescales), so predictions, metrics and
    logged rows need no inverse; only the loss is standardised. A target in the thousands then
    gives losses near 1 instead of 3436, Huber's delta of 1 means one standard deviation, and
    early stopping, weight decay and the learning curves read the same on any target's scale.
    """

    def standardized_loss(targets, predictions):
        return loss((targets - mean) / std, (predictions - mean) / std)

    return standardized_loss


def _metrics(task: str, keras) -> list:
    if task == "classification":
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]
    return [keras.metrics.MeanAbsoluteError(name="mae")]


def _class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(float)
    weights = counts.sum() / (n_classes * np.maximum(counts, 1.0))
    return {index: float(weight) for index, weight in enumerate(weights)}


def _callbacks(
    config: TrainingConfig, work_dir: Path, backup_dir: Path, start: dict, on_epoch, keras, steps_per_epoch: int
) -> list:
    # The history row is written before the checkpoint: a kill between the two repeats an epoch
    # (read_history keeps its last row) instead of losing one from the CSV. The checkpoint is
    # restored before the CSV logger opens the history: a training that starts over clears it.
    # The checkpoints stay when training ends: `_keep_finished` drops them once the model is saved.
    backup = _epoch_only(durable_backup(keras), keras)(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
    callbacks = [
        backup.restorer(work_dir / HISTORY_FILE),
        keras.callbacks.CSVLogger(str(work_dir / HISTORY_FILE), append=True),
        backup,
        keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: start.setdefault("epoch", epoch)),
        _epoch_only(keras.callbacks.TensorBoard, keras)(
            str(work_dir / "tensorboard"), histogram_freq=0, write_graph=False, update_freq="epoch", profile_batch=0
        ),
    ]
    # On small data an epoch is a few steps and its val_loss noise: neither the schedule nor
    # early stopping acts before the model has taken MIN_STEPS steps.
    settled = min(config.epochs // 2, -(-MIN_STEPS // steps_per_epoch))
    if config.learning_rate_schedule == "plateau":
        callbacks.append(_plateau(keras, config.learning_rate, settled))
    if config.patience > 0:
        callbacks.append(_early_stopping(keras, config.patience, settled))
    if on_epoch is not None:
        callbacks.append(
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, config.epochs))
        )
    return callbacks


def _plateau(keras, learning_rate: float, settled: int):
    """The learning rate halved after PLATEAU_PATIENCE epochs without a better val_loss, from
    epoch `settled` on (before, the epochs it saw do not count)."""

    class SettledReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 > settled:
                super().on_epoch_end(epoch, logs)

    return SettledReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=PLATEAU_PATIENCE, min_lr=learning_rate / 64
    )


def _early_stopping(keras, patience: int, settled: int):
    """Early stopping on val_loss that keeps the best epoch's weights from the first epoch on, but
    does not stop before epoch `settled` (Keras' start_from_epoch would also ignore the best
    epoch if it came earlier)."""

    class SettledEarlyStopping(keras.callbacks.EarlyStopping):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch + 1 < settled and self.stopped_epoch == epoch and self.model.stop_training:
                self.model.stop_training, self.stopped_epoch = False, 0

    return SettledEarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)


def _restored_epoch(callbacks: list, keras) -> int | None:
    """The epoch (from 1) whose weights early stopping put back when training ended, or None.

    What the evaluation diagnoses (pipeline/stages/diagnosis.py): after a resumed training it
    is the best of the epochs this process ran, not always the best of the whole history.
    """
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.EarlyStopping) and callback.best_weights is not None:
            return int(callback.best_epoch) + 1
    return None


def _epoch_only(callback_class, keras):
    """`callback_class` without its per-batch hooks, for callbacks that only act at epoch ends.

    Keras calls every callback after every step. TensorBoard's hook logs each step's metrics
    through tf.summary even when it writes once per epoch, and BackupAndRestore's checks whether
    to save: together 10 to 20% of the steps per second of a small model against a bare fit
    (benchmarks/bench_training.py). With Keras' default (empty) hooks put back, only the epoch
    ends do work.
    """
    default = keras.callbacks.Callback
    hooks = {
        name: getattr(default, name)
        for name in (
            "on_train_batch_begin",
            "on_train_batch_end",
            "on_test_batch_begin",
            "on_test_batch_end",
            "on_batch_end",
        )
    }
    return type(f"EpochOnly{callback_class.__name__}", (callback_class,), hooks)


def _has_checkpoint(work_dir: Path) -> bool:
    return (work_dir / "backup").exists() and (work_dir / HISTORY_FILE).exists()


def _clear(work_dir: Path) -> None:
    for name in ("backup", "tensorboard"):
        shutil.rmtree(work_dir / name, ignore_errors=True)
    for name in (HISTORY_FILE, FINISHED_MODEL, f"partial-{FINISHED_MODEL}"):
        (work_dir / name).unlink(missing_ok=True)


def _debug_verdict(history: dict[str, list[float]]) -> dict:
    first, last = history["loss"][0], history["loss"][-1]
    verdict = {
        "first_loss": first,
        "last_loss": last,
        "epochs": len(history["loss"]),
        "near_zero": last < DEBUG_NEAR_ZERO,
    }
    if not verdict["near_zero"]:
        raise RuntimeError(
            f"debug run: the training loss went from {first:.4f} to {last:.4f} in "
            f"{verdict['epochs']} epochs, not below {DEBUG_NEAR_ZERO}; the model cannot "
            "fit a handful of examples: check the labels, the inputs and the learning rate"
        )
    logger.info("debug run: the training loss went from %.4f to %.4f in %d epochs", first, last, verdict["epochs"])
    return verdict
