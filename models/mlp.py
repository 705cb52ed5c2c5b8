"""Multi-layer perceptron for tabular data: numeric and categorical inputs."""

import keras

from models.branches import branch, combine, head, make_inputs
from models.spec import ArchitectureSettings, ModelSpec

SUPPORTED_KINDS = ("numeric", "categorical")


def build(spec: ModelSpec, settings: ArchitectureSettings) -> keras.Model:
    """Numeric and categorical branches, concatenated, one dense layer, the head.

    Raises:
        ValueError: the spec has no inputs, or inputs of another kind (text, image).
    """
    unsupported = sorted({input_spec.kind for input_spec in spec.inputs} - set(SUPPORTED_KINDS))
    if unsupported:
        raise ValueError(
            f"mlp takes numeric and categorical inputs only; got {', '.join(unsupported)} "
            "inputs (use 'text', 'cnn' or 'auto')"
        )
    if not spec.inputs:
        raise ValueError("mlp needs at least one numeric or categorical input; got no inputs")
    inputs = make_inputs(spec)
    # One (batch, features_i) vector per input.
    features = [branch(inputs[input_spec.name], input_spec, settings) for input_spec in spec.inputs]
    # (batch, width)
    hidden = combine(features, settings)
    return keras.Model(inputs=inputs, outputs=head(hidden, spec, settings), name="mlp")
