"""Convolutional network for one image input; the image branch of `auto` too."""

import keras

from models.branches import describe_inputs, head, image_branch, make_inputs
from models.spec import ArchitectureSettings, ModelSpec


def build(spec: ModelSpec, settings: ArchitectureSettings) -> keras.Model:
    """Convolution blocks, flatten, one dense layer (see branches.image_branch), the head.

    Raises:
        ValueError: the spec is not exactly one image input.
    """
    if len(spec.inputs) != 1 or spec.inputs[0].kind != "image":
        raise ValueError(f"cnn takes exactly one image input; got {describe_inputs(spec)}")
    (image_spec,) = spec.inputs
    inputs = make_inputs(spec)
    # (batch, height, width, channels) -> (batch, width)
    features = image_branch(inputs[image_spec.name], image_spec, settings)
    return keras.Model(inputs=inputs, outputs=head(features, spec, settings), name="cnn")
