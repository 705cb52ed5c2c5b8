"""Training overhead: the TrainModel task (its tf.data pipeline over the stored features,
checkpoints, history, TensorBoard, the runs table) against a bare Keras fit of the same model on
the same features held in NumPy arrays, with the same epochs, batch size and seed.

Runs in a child process (`python -m benchmarks.bench_training ROWS ROUNDS`) whose Luigi
configuration points at a folder of its own; the parent only reads the JSON it prints.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import Result, run_child, scratch_folder

EPOCHS = 4
BATCH = 64
COLUMNS = 32


def _write_data_set(folder: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, COLUMNS)).round(5), columns=[f"x{i}" for i in range(COLUMNS)])
    frame["label"] = np.where(frame["x0"] + frame["x1"] > 0, "yes", "no")
    path = folder / "raw" / "table.csv"
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False)
    config = folder / "bench.cfg"
    config.write_text(
        f"[overnight]\ndata_root = {folder / 'data'}\n"
        f"database_url = sqlite:///{folder / 'data' / 'overnight.db'}\n"
        f"[dataset]\npath = {path}\nlabel = label\ntask = classification\n"
    )
    return config


def _bare(preprocessor, train, validation, seed: int) -> tuple[float, list[float]]:
    """Build, compile and fit as TrainModel does, on arrays already in memory; (wall, epoch times)."""
    import keras

    import models
    from models.spec import ArchitectureSettings

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    spec = preprocessor.model_spec()
    model = models.build_model("mlp", spec, ArchitectureSettings())
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    stamps = []
    timing = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
    one_hot = lambda labels: np.eye(spec.n_outputs, dtype="float32")[labels]  # noqa: E731
    model.fit(
        train.features,
        one_hot(train.labels),
        validation_data=(validation.features, one_hot(validation.labels)),
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=True,
        verbose=0,
        callbacks=[timing],
    )
    return time.perf_counter() - start, list(np.diff(stamps))


def _task(seed: int) -> tuple[float, list[float]]:
    """TrainModel as `luigi --module tasks TrainModel` runs it; epoch times from its TensorBoard log."""
    import luigi
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tasks import TrainModel

    task = TrainModel(architecture="mlp", epochs=EPOCHS, batch_size=BATCH, patience=0, seed=seed)
    start = time.perf_counter()
    if not luigi.build([task], local_scheduler=True, log_level="WARNING"):
        raise RuntimeError("TrainModel failed")
    total = time.perf_counter() - start
    events = EventAccumulator(str(Path(task.output().path) / "tensorboard" / "train")).Reload()
    return total, list(np.diff([event.wall_time for event in events.Tensors("epoch_loss")]))


def measure(rows: int, rounds: int) -> dict:
    import luigi

    from pipeline.artifacts.features import FeatureArrays
    from pipeline.stages.features import SplitArrays
    from tasks import FitPreprocessor

    logging.basicConfig(level=logging.WARNING)
    folder = scratch_folder("bench-training-")
    luigi.configuration.add_config_path(str(_write_data_set(folder, rows)))
    if not luigi.build([FitPreprocessor()], local_scheduler=True, log_level="WARNING"):
        raise RuntimeError("the features stage failed")
    features = FeatureArrays(Path(FitPreprocessor().output().path))
    preprocessor = features.preprocessor()
    train, validation = features.arrays("train"), features.arrays("validation")
    warm_up = SplitArrays({k: v[:512] for k, v in train.features.items()}, train.labels[:512], train.example_ids[:512])
    _bare(preprocessor, warm_up, validation, 0)
    measured = {"bare_wall": [], "bare_epochs": [], "task_wall": [], "task_epochs": []}
    for seed in range(rounds):  # alternated, so that a busy moment of the machine hits both alike
        for name, run in (
            ("bare", lambda seed=seed: _bare(preprocessor, train, validation, seed)),
            ("task", lambda seed=seed: _task(seed)),
        ):
            wall, epochs = run()
            measured[f"{name}_wall"].append(wall)
            measured[f"{name}_epochs"].append(float(np.median(epochs)))  # epochs 2+: the first holds tracing
    return {"steps": int(np.ceil(len(train.labels) / BATCH)), **measured}


def results(rows: int, rounds: int = 3) -> list[Result]:
    measured = run_child("benchmarks.bench_training", str(rows), str(rounds))
    task_rate, bare_rate = (measured["steps"] / np.median(measured[f"{name}_epochs"]) for name in ("task", "bare"))
    return [
        Result(
            f"training steps/s ({rows:,} rows, mlp)",
            task_rate,
            bare_rate,
            "steps/s",
            ">= 0.95",
            f"TrainModel vs model.fit on NumPy arrays; median of epochs 2+ over {rounds} alternated runs",
        ),
        Result(
            "TrainModel wall time",
            float(np.median(measured["task_wall"])),
            float(np.median(measured["bare_wall"])),
            "s",
            "<= 1.10",
            f"{EPOCHS} epochs; the task's includes loading the features, saving and recording the run",
        ),
    ]


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]))))
