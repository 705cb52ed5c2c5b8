"""MobileNetV3-Small from keras.applications for one image input, to fine-tune weights a user has.

Built with `weights=None`: nothing is downloaded. `[TrainModel] initial_weights` may name the
no-top weights file Keras publishes for it (`weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5`,
fetched by the user beforehand), which pipeline/stages/initial_weights.py loads into the backbone;
those weights expect three channels and images of 32 pixels a side or more.
"""

import keras
from keras import layers

from models.branches import augmented, describe_inputs, head, make_inputs
from models.spec import BACKBONE, ArchitectureSettings, ModelSpec

MINIMUM_SIDE = 32  # MobileNetV3 halves the image five times


def build(spec: ModelSpec, settings: ArchitectureSettings) -> keras.Model:
    """Augmentation, pixels to [-1, 1], the MobileNetV3-Small backbone averaged over space, the head.

    Raises:
        ValueError: the spec is not one image input of at least 32 x 32 pixels.
    """
    if len(spec.inputs) != 1 or spec.inputs[0].kind != "image":
        raise ValueError(f"mobilenet_v3_small takes exactly one image input; got {describe_inputs(spec)}")
    (image_spec,) = spec.inputs
    height, width, _ = image_spec.shape
    if min(height, width) < MINIMUM_SIDE:
        raise ValueError(
            f"mobilenet_v3_small needs images of at least {MINIMUM_SIDE} x {MINIMUM_SIDE} pixels; got {height} x "
            f"{width} (set [FitPreprocessor] image_size)"
        )
    inputs = make_inputs(spec)
    images = augmented(inputs[image_spec.name], image_spec, settings)  # (batch, h, w, c) in [0, 1]
    # (batch, h, w, c) in [-1, 1]: what MobileNetV3 expects without its own preprocessing layer
    scaled = layers.Rescaling(2.0, offset=-1.0, name=f"{image_spec.name}_scaled")(images)
    backbone = keras.applications.MobileNetV3Small(
        input_shape=image_spec.shape,
        include_top=False,
        weights=None,  # never downloaded: initial_weights brings them
        include_preprocessing=False,
        pooling="avg",
        name=BACKBONE,
    )
    # (batch, 576)
    features = backbone(scaled)
    return keras.Model(inputs=inputs, outputs=head(features, spec, settings), name="mobilenet_v3_small")
