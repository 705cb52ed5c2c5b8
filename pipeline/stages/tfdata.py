"""tf.data input pipelines for training and scoring. Imports TensorFlow: call from run() only."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

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
            raw = tf.io.read_file(inputs[name])
            # Decoded as stored, then converted: BMP and GIF cannot be decoded straight to one channel.
            image = _with_channels(tf.io.decode_image(raw, channels=0, expand_animations=False), shape.channels)
            image = tf.image.resize(image, (shape.height, shape.width))  # (h, w, c) float32
            decoded[name] = image / 255.0
        return decoded

    return decode


def _with_channels(image, channels: int):
    """Grayscale, grayscale with alpha, RGB or RGBA to the model's 1 or 3 channels."""
    stored = tf.shape(image)[-1]
    if channels == 1:  # a grayscale file stays exactly as stored
        converted = tf.cond(stored >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]), lambda: image[..., :1])
    else:
        converted = tf.cond(stored >= 3, lambda: image[..., :3], lambda: tf.image.grayscale_to_rgb(image[..., :1]))
    converted.set_shape([None, None, channels])
    return converted
