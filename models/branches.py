"""Building blocks shared by the architectures: inputs, one branch per input kind, the head.

A branch turns one input tensor into a flat feature vector (batch, features). Every builder
composes these, so two architectures that use the same branch build the same layers for it
(which is how `auto` on an image-only spec is exactly the `cnn`).

Layer names are prefixed with the input name, so a model with several inputs of one kind
(two categorical columns, say) still has unique layer names and saves cleanly.
"""

import keras
import numpy as np
from keras import layers

from models.spec import KINDS, ArchitectureSettings, InputSpec, ModelSpec

# Values go in as float32; ids (categories, tokens) as int32 for the embedding lookups.
INPUT_DTYPES = {"numeric": "float32", "image": "float32", "categorical": "int32", "text": "int32"}
TASKS = ("classification", "regression")
# Pooling halves height and width; a block pools only if both stay at least this big.
# Digits are 8x8: two pooled blocks take them to 2x2 and a third block does not pool.
MINIMUM_POOLED_SIZE = 2


def describe_inputs(spec: ModelSpec) -> str:
    """Inputs as "name (kind), ..." for error messages; "no inputs" when there are none."""
    if not spec.inputs:
        return "no inputs"
    return ", ".join(f"{input_spec.name} ({input_spec.kind})" for input_spec in spec.inputs)


def make_input(input_spec: InputSpec) -> keras.KerasTensor:
    """One keras.Input named after the input, with its per-example shape and dtype.

    Raises:
        ValueError: the input kind is not one of models.spec.KINDS.
    """
    if input_spec.kind not in INPUT_DTYPES:
        raise ValueError(
            f"input {input_spec.name!r} has unknown kind {input_spec.kind!r}; choose one of: {', '.join(KINDS)}"
        )
    return keras.Input(shape=input_spec.shape, dtype=INPUT_DTYPES[input_spec.kind], name=input_spec.name)


def make_inputs(spec: ModelSpec) -> dict[str, keras.KerasTensor]:
    """One keras.Input per spec input, keyed by name: the model then takes a dict of arrays."""
    return {input_spec.name: make_input(input_spec) for input_spec in spec.inputs}


def numeric_branch(
    inputs: keras.KerasTensor, input_spec: InputSpec, settings: ArchitectureSettings
) -> keras.KerasTensor:
    """Numeric columns (already standardized by the features stage) through one dense layer;
    piecewise-linear first when the settings ask for it and the spec has the edges."""
    if settings.numeric_encoding == "piecewise_linear" and input_spec.edges:
        inputs = piecewise_linear(inputs, input_spec)
    # (batch, n_columns) -> (batch, width)
    return layers.Dense(settings.width, activation="relu", name=f"{input_spec.name}_dense")(inputs)


def piecewise_linear(inputs: keras.KerasTensor, input_spec: InputSpec) -> keras.KerasTensor:
    """Each number as its place among the training quantiles, with the missing flags unchanged.

    Gorishniy, Rubachev and Babenko ("On Embeddings for Numerical Features in Tabular Deep
    Learning", NeurIPS 2022): bin t of a column is 0 below its lower edge, 1 above its upper one,
    and linear in between, so the dense layer after it can give each range of a number its own
    slope, as a tree's splits do. A fixed (untrained) dense layer computes (x - lower) / width for
    every bin, and passes the flags through; clipping to [0, 1] finishes it. A column with one
    training value has no bins: it was constant.
    """
    columns = input_spec.shape[0] // 2  # standardized values, then as many missing flags
    kernel, bias = _piecewise_linear_weights(input_spec.edges, columns)
    # (batch, 2 * columns) -> (batch, bins + columns)
    binned = layers.Dense(kernel.shape[1], trainable=False, name=f"{input_spec.name}_bins")
    placed = binned(inputs)
    binned.set_weights([kernel, bias])
    # (batch, bins + columns), each in [0, 1]
    return layers.ReLU(max_value=1.0, name=f"{input_spec.name}_piecewise_linear")(placed)


def _piecewise_linear_weights(edges: tuple[tuple[float, ...], ...], columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of the fixed layer: one output per bin of each column, then one per flag."""
    bins = [(column, lower, upper) for column, e in enumerate(edges) for lower, upper in zip(e, e[1:], strict=False)]
    kernel = np.zeros((2 * columns, len(bins) + columns), dtype="float32")
    bias = np.zeros(len(bins) + columns, dtype="float32")
    for output, (column, lower, upper) in enumerate(bins):
        kernel[column, output] = 1.0 / (upper - lower)
        bias[output] = -lower / (upper - lower)
    kernel[columns:, len(bins) :] = np.eye(columns, dtype="float32")  # the missing flags
    return kernel, bias


def categorical_branch(
    inputs: keras.KerasTensor, input_spec: InputSpec, settings: ArchitectureSettings
) -> keras.KerasTensor:
    """One categorical column of ids as a learned embedding."""
    # (batch, 1) int32 -> (batch, 1, embedding_dim)
    embedded = layers.Embedding(
        input_spec.vocabulary_size, settings.embedding_dim, name=f"{input_spec.name}_embedding"
    )(inputs)
    # (batch, 1, embedding_dim) -> (batch, embedding_dim)
    return layers.Flatten(name=f"{input_spec.name}_flatten")(embedded)


def text_branch(
    inputs: keras.KerasTensor, input_spec: InputSpec, settings: ArchitectureSettings
) -> keras.KerasTensor | None:
    """Token ids as embeddings, pooled over the sequence two ways, then one dense layer; None
    where the settings leave a text with a bag of words to its bag (`bag_of_words`)."""
    if not settings.text_sequence and input_spec.idf:
        return None
    # (batch, sequence_length) int32 -> (batch, sequence_length, text_embedding_dim)
    # No masking: padding id 0 gets its own embedding, which keeps the pooling layers simple
    # and lets the model learn how much a short text's padding should count.
    embedded = layers.Embedding(
        input_spec.vocabulary_size, settings.text_embedding_dim, mask_zero=False, name=f"{input_spec.name}_embedding"
    )(inputs)
    # Average pooling sees the whole text; max pooling keeps single strong tokens from being
    # diluted in a long text. Each: (batch, text_embedding_dim).
    averaged = layers.GlobalAveragePooling1D(name=f"{input_spec.name}_average")(embedded)
    maximum = layers.GlobalMaxPooling1D(name=f"{input_spec.name}_maximum")(embedded)
    # (batch, 2 * text_embedding_dim)
    pooled = layers.Concatenate(name=f"{input_spec.name}_pooled")([averaged, maximum])
    # (batch, width)
    return layers.Dense(settings.width, activation="relu", name=f"{input_spec.name}_dense")(pooled)


def bag_of_words(inputs: keras.KerasTensor, input_spec: InputSpec) -> keras.KerasTensor | None:
    """The text's words and word pairs as TF-IDF, L2-normalised: what a linear baseline sees.

    Fed straight to the head (`head`'s `wide`), so the model can be the linear TF-IDF model it
    is judged against, with the sequence branch on top. None where the input has no
    inverse document frequencies (a preprocessor fitted before they were recorded).
    """
    if not input_spec.idf:
        return None
    # Ids 1 (out of vocabulary) .. size - 1 each have their own slot; padding (0) is dropped.
    # (batch, width) int32 -> (batch, vocabulary_size): count of each id times its idf
    weighted = layers.IntegerLookup(
        vocabulary=np.arange(1, input_spec.vocabulary_size),
        idf_weights=np.asarray(input_spec.idf[1:], dtype="float32"),
        mask_token=0,
        output_mode="tf_idf",
        name=f"{input_spec.name}_tf_idf",
    )(inputs)
    # (batch, vocabulary_size), unit length: a long text counts as much as a short one
    return layers.UnitNormalization(name=f"{input_spec.name}_bag")(weighted)


def bags_of_words(inputs: dict[str, keras.KerasTensor], spec: ModelSpec) -> list[keras.KerasTensor]:
    """`bag_of_words` of every text input that has one."""
    bags = (bag_of_words(inputs[input_spec.name], input_spec) for input_spec in spec.of_kind("text"))
    return [bag for bag in bags if bag is not None]


def image_branch(inputs: keras.KerasTensor, input_spec: InputSpec, settings: ArchitectureSettings) -> keras.KerasTensor:
    """The CNN: one block of two 3x3 convolutions per entry of settings.filters, then dense.

    Flattens instead of global pooling: on small images (8x8 digits) where a feature sits
    matters, and global pooling throws that away (about 0.89 against 0.98 test accuracy).
    """
    features = augmented(inputs, input_spec, settings)  # (batch, height, width, channels)
    for block_number, filters in enumerate(settings.filters, start=1):
        prefix = f"{input_spec.name}_block{block_number}"
        # (batch, height, width, channels) -> (batch, height, width, filters)
        features = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{prefix}_conv1")(features)
        features = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{prefix}_conv2")(features)
        if _can_pool(features):
            # (batch, height, width, filters) -> (batch, height // 2, width // 2, filters)
            features = layers.MaxPooling2D(name=f"{prefix}_pool")(features)
    # (batch, height', width', filters[-1]) -> (batch, height' * width' * filters[-1])
    flat = layers.Flatten(name=f"{input_spec.name}_flatten")(features)
    # (batch, width)
    return layers.Dense(settings.width, activation="relu", name=f"{input_spec.name}_dense")(flat)


def augmented(images: keras.KerasTensor, input_spec: InputSpec, settings: ArchitectureSettings) -> keras.KerasTensor:
    """The images with the configured random changes, which Keras applies only while training.

    Off by default: a flip turns one digit or letter into another. Pixels are in [0, 1].
    """
    made = {
        "flip": lambda name: layers.RandomFlip("horizontal", seed=settings.seed, name=name),
        # a turn of up to 5% of a circle (18 degrees) either way
        "rotation": lambda name: layers.RandomRotation(0.05, fill_mode="nearest", seed=settings.seed, name=name),
        "brightness": lambda name: layers.RandomBrightness(0.1, value_range=(0.0, 1.0), seed=settings.seed, name=name),
        "contrast": lambda name: layers.RandomContrast(0.1, seed=settings.seed, name=name),
    }
    for change in settings.augmentation:
        images = made[change](f"{input_spec.name}_{change}")(images)  # one seed: reproducible runs
    return images


def _can_pool(features: keras.KerasTensor) -> bool:
    """Whether 2x2 pooling keeps both spatial sides at least MINIMUM_POOLED_SIZE."""
    _, height, width, _ = features.shape
    return min(height, width) // 2 >= MINIMUM_POOLED_SIZE


BRANCHES = {"numeric": numeric_branch, "categorical": categorical_branch, "text": text_branch, "image": image_branch}


def branch(inputs: keras.KerasTensor, input_spec: InputSpec, settings: ArchitectureSettings) -> keras.KerasTensor:
    """The branch for the input's kind: (batch, *input_spec.shape) -> (batch, features)."""
    return BRANCHES[input_spec.kind](inputs, input_spec, settings)


def combine(features: list[keras.KerasTensor], settings: ArchitectureSettings) -> keras.KerasTensor:
    """Joins branch outputs and mixes them with one dense layer.

    The dense layer lets features from different inputs interact before the (linear) head.
    """
    # n x (batch, features_i) -> (batch, sum of features_i)
    joined = features[0] if len(features) == 1 else layers.Concatenate(name="joined")(features)
    # (batch, width)
    return layers.Dense(settings.width, activation="relu", name="joined_dense")(joined)


def head(
    features: keras.KerasTensor | None,
    spec: ModelSpec,
    settings: ArchitectureSettings,
    wide: list[keras.KerasTensor] = (),
) -> keras.KerasTensor:
    """Dropout, then the task's output layer, in float32 even under mixed precision.

    Classification: (batch, n_outputs) logits, no softmax (the loss takes logits), named
    "logits". Regression: (batch, 1) in label units, named "prediction": the dense layer
    predicts a standardized target and a rescaling layer maps it back, so the saved model
    needs no post-processing. `wide` features (bags of words) add a linear model of their own
    to the output (`linear_part`): a wide and deep network; without hidden `features` (None),
    the linear model alone.

    Raises:
        ValueError: unknown task, regression with n_outputs other than 1, or nothing to join.
    """
    if spec.task not in TASKS:
        raise ValueError(f"unknown task {spec.task!r}; choose one of: {', '.join(TASKS)}")
    if spec.task == "regression" and spec.n_outputs != 1:
        raise ValueError(f"regression predicts one value; got n_outputs={spec.n_outputs}")
    if features is None and not wide:
        raise ValueError("a head needs hidden features, wide features or both; got neither")
    classifying = spec.task == "classification"
    output_name = "logits" if classifying else "standardized_prediction"
    # Alone, the linear model's layer is the output, named as the deep one would be.
    parts = [linear_part(wide, spec, "wide_linear" if features is not None else output_name)] if wide else []
    if features is not None:
        # (batch, features)
        dropped = layers.Dropout(settings.dropout, name="head_dropout")(features)
        # (batch, n_outputs): logits, or the prediction in standardized units
        name = f"deep_{output_name}" if wide else output_name
        parts.insert(0, layers.Dense(spec.n_outputs, dtype="float32", name=name)(dropped))
    output = layers.Add(dtype="float32", name=output_name)(parts) if len(parts) > 1 else parts[0]
    if classifying:
        return output
    # (batch, 1), label units: y = standardized * target_std + target_mean
    return layers.Rescaling(
        scale=float(spec.target_std), offset=float(spec.target_mean), dtype="float32", name="prediction"
    )(output)


# The bag of words enters its linear model scaled by WIDE_SCALE: Adam's steps are about the same
# size whatever a weight's gradient, so the scale sets how fast the linear part learns against the
# deep one, which overfits after a few epochs. Logits need large weights (a confident class is a
# gap of several units): at 10 the linear part was far from converged when early stopping kept
# those epochs (0.829 test accuracy on docstrings -> library, against 0.851 at 100). A prediction
# in standardised units does not, and at 100 it jumps from step to step (r2 0.48 -> 0.23 on
# Debian's package sizes). WIDE_L2 on the scaled bag is 3e-6 (1e-5) on the unit bag, the penalty of
# a logistic regression with C of about 30 (10) on 5,000 rows: without one, Adam settles on
# another separating direction of sparse, separable data, far from the regularised one (0.77
# test accuracy against 0.83 on Debian's package sections).
WIDE_SCALE = {"classification": 100.0, "regression": 10.0}
WIDE_L2 = {"classification": 0.03, "regression": 1e-3}


def linear_part(wide: list[keras.KerasTensor], spec: ModelSpec, name: str = "wide_linear") -> keras.KerasTensor:
    """A penalised linear model of the wide features: (batch, n_outputs)."""
    # n x (batch, size_i) -> (batch, sum of size_i)
    joined = wide[0] if len(wide) == 1 else layers.Concatenate(name="wide_joined")(wide)
    scaled = layers.Rescaling(WIDE_SCALE[spec.task], name="wide_scaled")(joined)
    penalty = keras.regularizers.L2(WIDE_L2[spec.task])
    return layers.Dense(spec.n_outputs, kernel_regularizer=penalty, dtype="float32", name=name)(scaled)
