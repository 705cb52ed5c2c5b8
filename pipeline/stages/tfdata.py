"""tf.data input pipelines for training and scoring. Imports TensorFlow: call from run() only."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipeline.stages.images import image_array
from pipeline.stages.preprocessor import ImageShape, Preprocessor, input_name


def make_dataset(
    features: dict[str, np.ndarray],
    labels: np.ndarray | None,
    preprocessor: Preprocessor,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (inputs, labels), or inputs alone when labels is None.

    Images are decoded, resized and scaled per example in parallel, then cached (they fit for
    the data sets this runs on; the cache is what keeps epoch two from decoding again).
    """
    elements = features if labels is None else (features, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    images = {input_name("image", column): shape for column, shape in preprocessor.image.items()}
    if images:
        decode = _image_decoder(images)
        dataset = dataset.map(
            decode if labels is None else lambda x, y: (decode(x), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(next(iter(features.values()))), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _image_decoder(images: dict[str, ImageShape]):
    def decode(inputs: dict) -> dict:
        decoded = dict(inputs)
        for name, shape in images.items():
            image = _read(inputs[name], shape)
            image = tf.image.resize(image, (shape.height, shape.width))  # (h, w, c) float32
            decoded[name] = image / 255.0
        return decoded

    return decode


def _read(path, shape: ImageShape):
    """pipeline/stages/images.py's reading of one file, as a uint8 tensor (h, w, channels).

    TensorFlow's own decoder would drop transparency, ignore EXIF orientation and misread CMYK:
    the pixels come from the same function that drift monitoring and the reports use.
    """
    side = max(shape.height, shape.width)  # a large JPEG decodes at a reduced size no smaller than this

    def pixels(encoded_path: bytes) -> np.ndarray:
        path = encoded_path.decode()
        return image_array(path, channels=shape.channels, background=shape.background, draft=side)

    image = tf.numpy_function(pixels, [path], tf.uint8, stateful=False)
    image.set_shape([None, None, shape.channels])
    return image
