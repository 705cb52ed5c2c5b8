"""05_training/<version>/: a model that serves: model.keras with its preprocessing, drift reference,
training record, history and TensorBoard logs. Keras is imported only to load or save."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.artifacts.folder import StageFolder, read_json, write_json
from pipeline.common.faults import pause_point
from pipeline.stages.fingerprint import file_sha256
from pipeline.stages.preprocessor import Preprocessor
from pipeline.stages.training import HISTORY_FILE, read_history

MODEL = "model.keras"
TRAINING = "training.json"  # the training config, epochs run and resumed, validation metrics
PREPROCESSOR = "preprocessor.json"  # as fitted by the features stage: the model's own
REFERENCE = "reference.json"  # the training split's profile: what nights drift from
TENSORBOARD = "tensorboard"


class ModelFolder(StageFolder):
    FILES = (MODEL, TRAINING, PREPROCESSOR, REFERENCE, HISTORY_FILE)

    def preprocessor(self) -> Preprocessor:
        return Preprocessor.from_json(read_json(self.path / PREPROCESSOR))

    def reference(self) -> dict:
        return read_json(self.path / REFERENCE)

    def training(self) -> dict:
        return read_json(self.path / TRAINING)

    def history(self) -> dict[str, list[float]]:
        return read_history(self.path / HISTORY_FILE)

    def sha256(self) -> str:
        return file_sha256(self.path / MODEL)

    def load_model(self):
        import keras

        # safe_mode refuses lambdas and other code smuggled inside a model file.
        return keras.saving.load_model(self.path / MODEL, safe_mode=True, compile=False)

    def write(
        self,
        model,
        *,
        preprocessor: Preprocessor,
        reference: dict,
        training: dict,
        history_csv: Path,
        tensorboard: Path | None = None,
    ) -> None:
        """Save the Keras model with everything it needs to score and to be understood later."""
        self.path.mkdir(parents=True, exist_ok=True)
        model.save(self.path / MODEL)
        pause_point("model-folder:saved")  # the model is written, its side files are not: a crash test kills here
        write_json(self.path / PREPROCESSOR, preprocessor.to_json())
        write_json(self.path / REFERENCE, reference)
        write_json(self.path / TRAINING, training)
        shutil.copy(history_csv, self.path / HISTORY_FILE)
        if tensorboard is not None and tensorboard.exists():
            shutil.copytree(tensorboard, self.path / TENSORBOARD, dirs_exist_ok=True)
