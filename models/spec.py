"""What a model builder is told about its inputs and outputs; no Keras here."""

from dataclasses import dataclass, field

KINDS = ("numeric", "categorical", "text", "image")


@dataclass(frozen=True)
class InputSpec:
    """One Keras input, produced by the features stage.

    name: Keras input name and key of the feature dict, e.g. "numeric", "categorical__island",
        "text__review", "image__photo".
    kind: one of KINDS.
    shape: per-example shape: (n_columns,) float32 for numeric (values and missing flags),
        (1,) int32 for categorical, (sequence_length,) int32 for text, (height, width, channels)
        float32 in [0, 1] for image.
    vocabulary_size: categorical and text only: number of ids, reserved 0 (missing/padding)
        and 1 (out of vocabulary) included.
    idf: text only: the inverse document frequency of each id in the training texts, reserved
        ids included; empty where the preprocessor has none (then no bag of words is built).
    edges: numeric only: per column, the ascending training quantiles of its standardised values,
        the bins of a piecewise-linear encoding; empty where the preprocessor has none.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    vocabulary_size: int = 0
    idf: tuple[float, ...] = field(default=(), repr=False)
    edges: tuple[tuple[float, ...], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class ModelSpec:
    """The data side of a model: inputs, task and output size."""

    inputs: tuple[InputSpec, ...]
    task: str  # "classification" or "regression"
    n_outputs: int  # number of classes, or 1 for regression
    # Regression targets are predicted in label units: the output layer rescales by these.
    target_mean: float = 0.0
    target_std: float = 1.0

    def of_kind(self, kind: str) -> tuple[InputSpec, ...]:
        return tuple(spec for spec in self.inputs if spec.kind == kind)


@dataclass(frozen=True)
class ArchitectureSettings:
    """Hyperparameters shared by every builder; each uses the ones that apply to it."""

    width: int = 128  # units of the hidden dense layer(s)
    dropout: float = 0.3  # dropout before the output head
    embedding_dim: int = 16  # categorical embeddings
    text_embedding_dim: int = 32  # token embeddings
    filters: tuple[int, ...] = field(default=(32, 64))  # one convolution block per entry
    # Random image changes while training, none at prediction: any of AUGMENTATIONS.
    augmentation: tuple[str, ...] = ()
    seed: int = 42  # of the augmentation's random changes
    # How numbers enter: "standardized" values, or "piecewise_linear" on training quantiles
    # (Gorishniy et al., NeurIPS 2022), where the spec has the edges.
    numeric_encoding: str = "standardized"
    # Whether a text input with a bag of words also gets the sequence branch (embeddings pooled).
    text_sequence: bool = True


AUGMENTATIONS = ("flip", "rotation", "brightness", "contrast")
NUMERIC_ENCODINGS = ("standardized", "piecewise_linear")
BACKBONE = "backbone"  # the name of a keras.applications network inside a model (mobilenet_v3_small)


def parse_augmentation(text: str) -> tuple[str, ...]:
    """`flip, rotation` -> ("flip", "rotation"); empty -> ().

    Raises:
        ValueError: naming the setting and the unknown names.
    """
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(
            f"[TrainModel] augmentation: {', '.join(unknown)} unknown; choose from {', '.join(AUGMENTATIONS)}"
        )
    return names
