"""Image decoding in tf.data: the one decoder (pipeline/stages/images.py, through tf.numpy_function)
against TensorFlow's own tf.io.decode_image, which 0.1 used and which drops transparency.

Both decode each file once: make_dataset caches the decoded images, so this is the first
epoch's cost (and nightly scoring's). Measured on PNG icons with transparency and on JPEG photos.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import Result
from pipeline.stages.preprocessor import ImageShape, Preprocessor
from pipeline.stages.schema import Schema

SIDE = 64
KINDS = {"png": (48, "RGBA"), "jpg": (640, "RGB")}  # icon side and mode, photo side and mode


def results(images: int) -> list[Result]:
    import tensorflow as tf

    folder = Path(tempfile.mkdtemp(prefix="bench-decoding-"))
    try:
        measured = []
        for suffix, (side, mode) in KINDS.items():
            paths = _write(folder, suffix, side, mode, images)
            ours = _images_per_second(_ours(paths))
            theirs = _images_per_second(_tensorflow(tf, paths))
            measured.append(
                Result(
                    f"first-epoch decoding, {images:,} {side}-px {suffix.upper()} ({mode})",
                    ours,
                    theirs,
                    "images/s",
                    ">= 0.3",
                    "baseline: tf.io.decode_image (drops transparency and EXIF orientation)",
                )
            )
        return measured
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write(folder: Path, suffix: str, side: int, mode: str, count: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        blocks = rng.integers(0, 256, (8, 8, len(mode)), dtype=np.uint8)  # smooth enough to compress
        image = Image.fromarray(blocks, mode).resize((side, side), Image.Resampling.BILINEAR)
        path = folder / f"{index:06d}.{suffix}"
        image.save(path)
        paths.append(str(path))
    return paths


def _ours(paths: list[str]):
    from pipeline.stages.tfdata import make_dataset

    schema = Schema(label="label", task="classification", kinds={"image": "image"})
    preprocessor = Preprocessor(schema=schema, image={"image": ImageShape(SIDE, SIDE, 3)}, classes=("a",))
    return make_dataset({"image__image": np.asarray(paths)}, None, preprocessor, batch_size=64)


def _tensorflow(tf, paths: list[str]):
    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False)
        image = tf.cond(
            tf.shape(image)[-1] >= 3, lambda: image[..., :3], lambda: tf.image.grayscale_to_rgb(image[..., :1])
        )
        image.set_shape([None, None, 3])
        return tf.image.resize(image, (SIDE, SIDE)) / 255.0

    dataset = tf.data.Dataset.from_tensor_slices(paths)
    return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache().batch(64)


def _images_per_second(dataset) -> float:
    start, count = time.perf_counter(), 0
    for batch in dataset:
        count += len(next(iter(batch.values())) if isinstance(batch, dict) else batch)
    return count / (time.perf_counter() - start)
