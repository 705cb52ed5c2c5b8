"""Prediction stage: load a saved model and score model inputs. Imports TensorFlow lazily."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import softmax

MODEL_FILE = "model.keras"


def load_model(model_dir: str | Path):
    import keras

    # safe_mode refuses lambdas and other code smuggled inside a model file.
    return keras.saving.load_model(Path(model_dir) / MODEL_FILE, safe_mode=True, compile=False)


def predict(model, features: dict[str, np.ndarray], preprocessor: dict, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (rows, classes) for classification, values (rows,) for regression."""
    from pipeline.tfdata import make_dataset

    rows = len(next(iter(features.values())))
    if rows == 0:
        width = len(preprocessor.get("classes", [])) or 1
        return np.zeros((0, width)) if preprocessor["task"] == "classification" else np.zeros(0)
    dataset = make_dataset(features, None, preprocessor, batch_size=batch_size)
    outputs = np.asarray(model.predict(dataset, verbose=0), dtype="float64")  # (rows, outputs)
    if preprocessor["task"] == "classification":
        return softmax(outputs, axis=1)
    return outputs[:, 0]
