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


def image_batches(features: dict[str, np.ndarray], preprocessor: Preprocessor, *, batch_size: int):
    """The model inputs in batches of `batch_size` rows, images decoded: for scoring, where each
    file is read once and tf.data's per-element cost would be most of the time (a night of
    20,000 small PNG files scored at a third of a plain PIL loop's speed through `make_dataset`).

    The pixels are the training pipeline's: the same decoder, then `tf.image.resize` and /255,
    on images grouped by their decoded size. One file after another: threads were slower (most
    of a small file's reading is Python, under the GIL).
    """
    images = {input_name("image", column): shape for column, shape in preprocessor.image.items()}
    rows = len(next(iter(features.values())))
    for start in range(0, rows, batch_size):
        batch = {name: values[start : start + batch_size] for name, values in features.items()}
        for name, shape in images.items():
            batch[name] = _decoded(batch[name], shape)
        yield batch


def _decoded(paths: np.ndarray, shape: ImageShape) -> np.ndarray:
    side = max(shape.height, shape.width)
    pixels = [
        image_array(str(path), channels=shape.channels, background=shape.background, draft=side) for path in paths
    ]
    out = np.empty((len(pixels), shape.height, shape.width, shape.channels), dtype=np.float32)
    by_size: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(pixels):
        by_size.setdefault(image.shape[:2], []).append(index)
    for indices in by_size.values():
        stacked = np.stack([pixels[index] for index in indices])
        out[indices] = tf.image.resize(stacked, (shape.height, shape.width)).numpy() / 255.0
    return out


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
