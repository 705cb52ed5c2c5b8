"""Initial weights a user brings: an earlier model to fine-tune, or a weights file; never a download.

`[TrainModel] initial_weights = path` names a `.keras` model (an earlier overnight model, or any
Keras 3 model), a `.weights.h5` file, or an `.h5` weights file of a keras.applications network.
A `.keras` model gives its weights layer by layer: a layer of the new model takes the weights of
the source's layer of the same name when every weight has the same shape. The others keep their
fresh initialisation: a classifier head of another number of classes, an embedding of another
vocabulary. A `.weights.h5` file is Keras' own weights file of a model of the same architecture,
loaded whole. An `.h5` file (Keras' published no-top weights, such as
`weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5`) goes into the model's `backbone`
(architecture `mobilenet_v3_small`); the head starts afresh.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from models.spec import BACKBONE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transfer:
    """Which layers took their weights from the file."""

    taken: tuple[str, ...]
    kept: tuple[str, ...]  # layers with weights that kept their initialisation (no match)

    def line(self, path: str) -> str:
        kept = f"; initialised afresh: {', '.join(self.kept)}" if self.kept else ""
        return f"initial weights from {path}: {len(self.taken)} of {len(self.taken) + len(self.kept)} layers{kept}"


def load_initial_weights(model, path: str) -> Transfer:
    """Copy the weights of `path` into `model` (built, not yet trained); see the module docstring.

    Raises:
        ValueError: the file is missing, of another kind, unreadable, or matches no layer; the
            message names the file and the setting.
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"[TrainModel] initial_weights: {path} does not exist")
    if file.name.endswith(".weights.h5"):
        return _whole_weights(model, file)
    if file.suffix == ".h5":
        return _backbone_weights(model, file)
    if file.suffix != ".keras":
        raise ValueError(
            f"[TrainModel] initial_weights: {path} is neither a .keras model nor a .weights.h5 or .h5 weights file"
        )
    import keras

    try:
        source = keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the one-line message
        raise ValueError(f"[TrainModel] initial_weights: {path} is no readable Keras model ({error})") from None
    transfer = _by_name(model, source)
    if not transfer.taken:
        raise ValueError(
            f"[TrainModel] initial_weights: no layer of {path} matches the model by name and shape "
            f"(its layers: {', '.join(layer.name for layer in source.layers if layer.weights)})"
        )
    logger.info("%s", transfer.line(path))
    return transfer


def _by_name(model, source) -> Transfer:
    sources = {layer.name: layer for layer in source.layers if layer.weights}
    taken, kept = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        match = sources.get(layer.name)
        shapes = [tuple(weight.shape) for weight in layer.weights]
        if match is not None and [tuple(weight.shape) for weight in match.weights] == shapes:
            layer.set_weights(match.get_weights())
            taken.append(layer.name)
        else:
            kept.append(layer.name)
    return Transfer(tuple(taken), tuple(kept))


def _backbone_weights(model, file: Path) -> Transfer:
    names = [layer.name for layer in model.layers]
    if BACKBONE not in names:
        raise ValueError(
            f"[TrainModel] initial_weights: {file} is a keras.applications weights file, which fits the "
            "backbone of architecture mobilenet_v3_small; this model has none"
        )
    _load_weights(model.get_layer(BACKBONE), file, "the mobilenet_v3_small backbone, whose weights need three channels")
    kept = tuple(layer.name for layer in model.layers if layer.weights and layer.name != BACKBONE)
    transfer = Transfer((BACKBONE,), kept)
    logger.info("%s", transfer.line(str(file)))
    return transfer


def _whole_weights(model, file: Path) -> Transfer:
    _load_weights(model, file, "this model: a .weights.h5 file must come from the same architecture on the same inputs")
    transfer = Transfer(tuple(layer.name for layer in model.layers if layer.weights), ())
    logger.info("%s", transfer.line(str(file)))
    return transfer


def _load_weights(target, file: Path, misfit: str) -> None:
    """`target.load_weights(file)`, or one line naming the setting, the file and what it misses."""
    try:
        target.load_weights(file)
    except Exception as error:  # noqa: BLE001 - Keras raises several kinds for a mismatched file
        raise ValueError(f"[TrainModel] initial_weights: {file} does not fit {misfit} ({error})") from None
