"""Token-embedding network for one text input, optionally with numeric/categorical inputs."""

import keras

from models.branches import bags_of_words, branch, combine, describe_inputs, head, make_inputs
from models.spec import ArchitectureSettings, ModelSpec

SUPPORTED_KINDS = ("text", "numeric", "categorical")


def build(spec: ModelSpec, settings: ArchitectureSettings) -> keras.Model:
    """Text branch, joined with the other branches when there are any, then the head.

    Raises:
        ValueError: not exactly one text input, or an image input.
    """
    text_inputs = spec.of_kind("text")
    unsupported = sorted({input_spec.kind for input_spec in spec.inputs} - set(SUPPORTED_KINDS))
    if len(text_inputs) != 1 or unsupported:
        raise ValueError(
            "text takes exactly one text input plus optional numeric and categorical inputs; "
            f"got {describe_inputs(spec)} (use 'auto' for other combinations)"
        )
    inputs = make_inputs(spec)
    # One (batch, features_i) vector per input; the text branch's is (batch, width).
    # (A text left to its bag of words has no branch: None.)
    features = [f for f in (branch(inputs[s.name], s, settings) for s in spec.inputs) if f is not None]
    # Text alone already ends in a dense layer; with other inputs, mix them first. None: the text is
    # left to its bag of words and there are no other inputs.
    hidden = (features[0] if len(features) == 1 else combine(features, settings)) if features else None
    return keras.Model(inputs=inputs, outputs=head(hidden, spec, settings, bags_of_words(inputs, spec)), name="text")
