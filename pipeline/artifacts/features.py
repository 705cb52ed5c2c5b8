"""04_features/<version>/: the fitted preprocessor, the drift reference and each split's arrays."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.artifacts.folder import StageFolder, read_json, write_json
from pipeline.common.columns import SPLITS
from pipeline.common.disk import require_free
from pipeline.stages.preprocessor import Preprocessor

if TYPE_CHECKING:  # NumPy and pandas load when arrays are read or written: `import tasks` stays light
    from pipeline.stages.features import SplitArrays

PREPROCESSOR = "preprocessor.json"  # fitted on the training split only
REFERENCE = "reference.json"  # the training split's profile, for nightly drift
EXAMPLE_IDS = "example_id"  # array names inside each <split>.npz besides the model inputs
LABELS = "label"


class FeatureArrays(StageFolder):
    FILES = (PREPROCESSOR, REFERENCE, *(f"{name}.npz" for name in SPLITS))

    def preprocessor(self) -> Preprocessor:
        return Preprocessor.from_json(read_json(self.file(PREPROCESSOR)))

    def reference(self) -> dict:
        return read_json(self.file(REFERENCE))

    def arrays(self, split: str) -> SplitArrays:
        return load_arrays(self.file(f"{split}.npz"))

    def labels(self, split: str):
        """One split's encoded labels alone (None for unlabeled rows): the other arrays stay unread."""
        import numpy as np

        with np.load(self.file(f"{split}.npz"), allow_pickle=False) as stored:
            return stored[LABELS] if LABELS in stored.files else None

    def write_fitted(self, preprocessor: Preprocessor, reference: dict) -> None:
        write_json(self.path / PREPROCESSOR, preprocessor.to_json())
        write_json(self.path / REFERENCE, reference)

    def write_arrays(self, split: str, arrays: SplitArrays) -> None:
        save_arrays(self.path / f"{split}.npz", arrays)


def save_arrays(path: Path, arrays: SplitArrays) -> None:
    """One split's model inputs as .npz (no pickle: object arrays are refused)."""
    import numpy as np

    stored = dict(arrays.features)
    stored[EXAMPLE_IDS] = np.asarray(arrays.example_ids, dtype=str)
    if arrays.labels is not None:
        stored[LABELS] = arrays.labels
    pickled = [name for name, values in stored.items() if values.dtype == object]
    if pickled:
        raise TypeError(f"object arrays would be pickled: {', '.join(pickled)}")
    require_free(Path(path).parent, sum(values.nbytes for values in stored.values()), f"the arrays {Path(path).name}")
    with open(path, "wb") as handle:
        np.savez(handle, **stored)


def load_arrays(path: Path) -> SplitArrays:
    import numpy as np

    from pipeline.stages.features import SplitArrays

    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    example_ids = arrays.pop(EXAMPLE_IDS)
    labels = arrays.pop(LABELS, None)
    return SplitArrays(arrays, labels, example_ids)
