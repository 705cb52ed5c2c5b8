"""The default architecture: one branch per input of any kind, joined.

A new data set needs no architecture choice: whatever columns it has, each gets the branch
for its kind. An image-only data set gets exactly the `cnn`.
"""

import keras

from models import cnn
from models.branches import bags_of_words, branch, combine, head, make_inputs
from models.spec import ArchitectureSettings, ModelSpec


def build(spec: ModelSpec, settings: ArchitectureSettings) -> keras.Model:
    """Branches for every input, concatenated, one dense layer, the head; a text's bag of words
    as a linear model of its own beside them (`branches.head`).

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
    # (A text left to its bag of words has no branch: None.)
    features = [f for f in (branch(inputs[s.name], s, settings) for s in spec.inputs) if f is not None]
    # (batch, width); None when the only input is a text left to its bag of words
    hidden = combine(features, settings) if features else None
    return keras.Model(inputs=inputs, outputs=head(hidden, spec, settings, bags_of_words(inputs, spec)), name="auto")
