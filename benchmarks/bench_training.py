"""Training overhead: pipeline.training.train (tf.data over the stored features, checkpoints,
history, TensorBoard) against a bare Keras fit of the same model on the same NumPy arrays."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import Result

EPOCHS = 4
BATCH = 64


def _data(rows: int, columns: int = 32, seed: int = 0):
    from pipeline import features
    from pipeline.schema import Schema

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, columns)), columns=[f"x{i}" for i in range(columns)])
    frame["label"] = np.where(frame["x0"] + frame["x1"] > 0, "yes", "no")
    schema = Schema(label="label", task="classification", kinds={c: "numeric" for c in frame.columns[:-1]})
    preprocessor = features.fit(frame, schema)
    inputs = features.transform(frame, preprocessor)
    labels = features.encode_labels(frame["label"], preprocessor)
    cut = int(rows * 0.9)
    train = ({k: v[:cut] for k, v in inputs.items()}, labels[:cut])
    validation = ({k: v[cut:] for k, v in inputs.items()}, labels[cut:])
    return preprocessor, train, validation


def _bare(preprocessor, train, validation) -> tuple[float, list[float]]:
    import keras

    import models
    from models.spec import ArchitectureSettings
    from pipeline.features import model_spec

    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    spec = model_spec(preprocessor)
    model = models.build_model("mlp", spec, ArchitectureSettings())
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    stamps = []
    timing = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
    one_hot = lambda labels: np.eye(spec.n_outputs, dtype="float32")[labels]  # noqa: E731
    begin = time.perf_counter()
    model.fit(train[0], one_hot(train[1]), validation_data=(validation[0], one_hot(validation[1])), epochs=EPOCHS,
              batch_size=BATCH, shuffle=True, verbose=0, callbacks=[timing])
    return time.perf_counter() - start, [b - a for a, b in zip([begin] + stamps[:-1], stamps)]


def _ours(preprocessor, train, validation) -> tuple[float, list[float]]:
    from pipeline.training import TrainingConfig, train as fit

    folder = Path(tempfile.mkdtemp(prefix="bench-training-"))
    stamps = []
    config = TrainingConfig(architecture="mlp", epochs=EPOCHS, batch_size=BATCH, patience=0, seed=0, verbose=0)
    start = time.perf_counter()
    fit(train, validation, preprocessor, config, model_dir=folder / "model", work_dir=folder / "work",
        on_epoch=lambda done, total: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    # Epoch one holds graph tracing in both: only later epochs measure steady steps.
    return total, [b - a for a, b in zip(stamps[:-1], stamps[1:])]


def results(rows: int) -> list[Result]:
    preprocessor, train, validation = _data(rows)
    _bare(*_data(512))  # warm TensorFlow up for both
    bare_total, bare_epochs = _bare(preprocessor, train, validation)
    ours_total, ours_epochs = _ours(preprocessor, train, validation)
    steps = int(np.ceil(len(train[1]) / BATCH))
    bare_rate = steps / np.median(bare_epochs[1:])
    ours_rate = steps / np.median(ours_epochs)
    return [Result(f"training steps/s ({rows:,} rows, mlp)", ours_rate, bare_rate, "steps/s", ">= 0.95",
                   "median of epochs 2+; baseline: model.fit on NumPy arrays"),
            Result("training wall time", ours_total, bare_total, "s", "<= 1.10",
                   f"{EPOCHS} epochs, build, fit, save and history included for overnight")]
