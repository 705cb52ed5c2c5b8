"""Training checkpoints a kill, a full disk or a torn file cannot turn into a blocked training.

Keras' BackupAndRestore writes `latest.weights.h5` in place and copies the previous one beside it:
a kill while it writes, or a full disk, leaves a file HDF5 cannot read, and every later run fails
in on_train_begin until someone deletes the work folder. Here each epoch's state is a folder of
its own, written under a temporary name, fsynced, then renamed: a state is either complete or
absent. The previous one stays until the next is complete. A state that cannot be loaded anyway
(a disk that lied) is set aside with a warning and the one before it is tried; with none left,
training starts over. Free space is checked before each save. Imports Keras: training only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np

from pipeline.common.disk import require_free
from pipeline.common.files import sync_directory, sync_tree

logger = logging.getLogger(__name__)

STATE = re.compile(r"epoch-(\d{6})")
WEIGHTS = "weights.weights.h5"  # Keras wants the .weights.h5 ending
METADATA = "state.json"
KEPT = 2  # the newest state and the one before it
HDF5_OVERHEAD = 256 * 1024  # bytes an .h5 file needs beyond its arrays


def durable_backup(keras):
    """A BackupAndRestore subclass with atomic, per-epoch states (see the module's docstring).

    It saves at each epoch's end; restoring is `restorer()`'s, a callback that must come before
    the history CSV's logger, so that a training that starts over clears the history first.
    Overrides BackupAndRestore's private _save_model and _load_model: keras is pinned below 4.
    """

    class DurableBackupAndRestore(keras.callbacks.BackupAndRestore):
        def on_train_begin(self, logs=None):
            pass  # restorer() has restored (or cleared) already

        def restorer(self, history_csv: Path):
            """The callback that restores the newest readable state, or starts over cleanly."""
            backup = self

            class Restore(keras.callbacks.Callback):
                def on_train_begin(self, logs=None):
                    if not backup._load_model():
                        history_csv.unlink(missing_ok=True)  # epochs of a run that cannot resume

            return Restore()

        def _save_model(self):
            backup = Path(self.backup_dir)
            backup.mkdir(parents=True, exist_ok=True)
            require_free(backup, state_bytes(self.model), "the training checkpoint")
            name = f"epoch-{self._current_epoch:06d}"
            temporary = backup / f".{name}.tmp"
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir()
            self.model.save_weights(str(temporary / WEIGHTS), overwrite=True)
            metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            (temporary / METADATA).write_text(json.dumps(metadata))
            sync_tree(temporary)
            os.replace(temporary, backup / name)
            sync_directory(backup)
            for old in states(backup)[KEPT:]:
                shutil.rmtree(old, ignore_errors=True)

        def _load_model(self) -> bool:
            """Restore the newest readable state; False when training starts over."""
            backup = Path(self.backup_dir)
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            for state in states(backup):
                try:
                    metadata = json.loads((state / METADATA).read_text())
                    self.model.load_weights(str(state / WEIGHTS))
                except Exception as error:  # noqa: BLE001 - any unreadable state is set aside, never fatal
                    aside = state.with_name(f"torn-{state.name}")
                    shutil.rmtree(aside, ignore_errors=True)
                    os.replace(state, aside)
                    logger.warning("checkpoint %s cannot be read (%s); set aside as %s", state, error, aside.name)
                    continue
                self.model._initial_epoch = self._current_epoch = int(metadata["epoch"])
                return True
            self._current_epoch = 0  # nothing readable: training starts over
            return False

    return DurableBackupAndRestore


def states(backup: Path) -> list[Path]:
    """The complete states in a backup folder, newest first."""
    if not backup.is_dir():
        return []
    found = [path for path in backup.iterdir() if path.is_dir() and STATE.fullmatch(path.name)]
    return sorted(found, key=lambda path: path.name, reverse=True)


def state_bytes(model) -> int:
    """About the size of a saved state: the model's and the optimizer's variables, plus HDF5's own."""
    # A model loaded without compiling (a finished training taken from its work folder) has none.
    optimizer = getattr(model, "optimizer", None)
    variables = list(model.weights) + (list(optimizer.variables) if optimizer is not None else [])
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables) + HDF5_OVERHEAD
