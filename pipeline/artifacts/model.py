"""05_training/<version>/: a model that serves: model.keras with its preprocessing, drift reference,
training record, history and TensorBoard logs. Keras is imported only to load or save."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.artifacts.folder import INTEGRITY, DamagedOutput, StageFolder, read_json, write_json
from pipeline.common.disk import require_free
from pipeline.common.faults import pause_point
from pipeline.common.files import file_sha256
from pipeline.stages.history import HISTORY_FILE, read_history
from pipeline.stages.preprocessor import Preprocessor

MODEL = "model.keras"
TRAINING = "training.json"  # the training config, epochs run and resumed, validation metrics
PREPROCESSOR = "preprocessor.json"  # as fitted by the features stage: the model's own
REFERENCE = "reference.json"  # the training split's profile: what nights drift from
TENSORBOARD = "tensorboard"


# What scoring and drift monitoring read from the folder: the registry keeps each one's hash.
SCORED_WITH = (MODEL, PREPROCESSOR, REFERENCE)


class ModelFolder(StageFolder):
    FILES = (MODEL, TRAINING, PREPROCESSOR, REFERENCE, HISTORY_FILE)

    def file(self, name: str) -> Path:
        # Every model folder is sealed when it is made; one without its seal may have lost it
        # with a file changed beside it, so nothing in it is read until the seal is rebuilt from
        # hashes known elsewhere (the registry's: seal_from_registry), never from the files as they are.
        if not self.is_sealed():
            raise DamagedOutput(
                f"{self.path / name} cannot be verified: {self.path / INTEGRITY} is missing and no "
                "registered hash covers the file; rebuild the model with `luigi --module tasks RegisterModel` "
                "and the parameters it was trained with"
            )
        return super().file(name)

    def hashes(self) -> dict[str, str]:
        """{file name: sha256} of the files scoring reads, each checked against the seal first."""
        return {name: file_sha256(self.file(name)) for name in SCORED_WITH}

    def seal_from_registry(self, registered: dict[str, str]) -> None:
        """Rebuild a lost seal from the files whose registered hashes they match, and only those.

        Raises:
            DamagedOutput: a file scoring reads is not what was registered, or has no registered hash.
        """
        for name in SCORED_WITH:
            path = self.path / name
            found = file_sha256(path) if path.is_file() else "missing"
            if name not in registered:
                raise DamagedOutput(
                    f"{path} cannot be verified: {self.path / INTEGRITY} is missing and the registry holds "
                    "no hash of the file (a model registered before its files were hashed); rebuild the model "
                    "with `luigi --module tasks RegisterModel` and the parameters it was trained with"
                )
            if found != registered[name]:
                raise DamagedOutput(
                    f"{path} is not the registered file (sha256 {found[:12]}, registered {registered[name][:12]}) "
                    f"and {self.path / INTEGRITY} is missing: put the registered file back, or rebuild the model "
                    "with `luigi --module tasks RegisterModel` and the parameters it was trained with"
                )
        self.seal(only=SCORED_WITH)

    def preprocessor(self) -> Preprocessor:
        return Preprocessor.from_json(read_json(self.file(PREPROCESSOR)))

    def reference(self) -> dict:
        return read_json(self.file(REFERENCE))

    def training(self) -> dict:
        return read_json(self.file(TRAINING))

    def history(self) -> dict[str, list[float]]:
        return read_history(self.file(HISTORY_FILE))

    def sha256(self) -> str:
        return file_sha256(self.file(MODEL))

    def load_model(self):
        import keras

        # safe_mode refuses lambdas and other code smuggled inside a model file.
        return keras.saving.load_model(self.file(MODEL), safe_mode=True, compile=False)

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
        from pipeline.stages.checkpoints import state_bytes

        require_free(self.path, state_bytes(model), "the model")
        model.save(self.path / MODEL)
        pause_point("model-folder:saved")  # the model is written, its side files are not: a crash test kills here
        write_json(self.path / PREPROCESSOR, preprocessor.to_json())
        write_json(self.path / REFERENCE, reference)
        write_json(self.path / TRAINING, training)
        shutil.copy(history_csv, self.path / HISTORY_FILE)
        if tensorboard is not None and tensorboard.exists():
            shutil.copytree(tensorboard, self.path / TENSORBOARD, dirs_exist_ok=True)
