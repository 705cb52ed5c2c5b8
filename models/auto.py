"""The default architecture: one branch per input of any kind, joined.

A new data set needs no architecture choice: whatever columns it has, each gets the branch
for its kind. An image-only data set gets exactly the `cnn`.
"""

import keras

from models import cnn
from models.branches import bags_of_words, branch, combine, head, make_inputs
from models.spec import ArchitectureSettings, ModelSpec


def build(spec: ModelSpec, settings: ArchitectureSettings) -> keras.Model:
    """Branches for every input, concatenated, one dense layer, the head.

    Raises:
        ValueError: the spec has no inputs, or an input of unknown kind.
    """
    if not spec.inputs:
        raise ValueError("auto needs at least one input; got no inputs")
    if len(spec.inputs) == 1 and spec.inputs[0].kind == "image":
        # The cnn's image branch already ends in a dense layer; another would only add weights.
        return cnn.build(spec, settings)
    inputs = make_inputs(spec)
    # One (batch, features_i) vector per input.
    features = [branch(inputs[input_spec.name], input_spec, settings) for input_spec in spec.inputs]
    # (batch, width)
    hidden = combine(features, settings)
    return keras.Model(inputs=inputs, outputs=head(hidden, spec, settings, bags_of_words(inputs, spec)), name="auto")
