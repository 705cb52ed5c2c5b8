"""GPU figures: images per second of the `cnn` architecture in float32, with mixed precision and
with XLA, and the share of step time spent waiting for input (the TensorFlow profiler's
input-pipeline analysis, through xprof).

Needs a GPU that TensorFlow sees and the `gpu` extra (`pip install -e '.[gpu]'`: TensorFlow with
CUDA, and xprof to analyse the profile). Each variant trains in its own process: mixed precision
is a process-wide Keras policy. Images are PNG files generated here and read by the same tf.data
pipeline as TrainModel's (decoded in parallel, cached after the first epoch).

    python -m benchmarks.run_all --only gpu
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import Result, run_child, scratch_folder

SIDE = 64
CLASSES = 10
EPOCHS = 4
BATCH = 256
VARIANTS = ("float32", "mixed", "xla", "profile")


def gpu_visible() -> bool:
    """Asks nvidia-smi, not TensorFlow: the parent process must not initialise CUDA."""
    from pipeline.common.environment import gpu_name

    return gpu_name() is not None


def _write_images(folder: Path, count: int) -> pd.DataFrame:
    """`count` RGB PNGs: noise plus a bright square whose place gives the class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, count)
    paths = []
    for index, label in enumerate(labels):
        pixels = rng.integers(0, 96, (SIDE, SIDE, 3), dtype=np.uint8)
        row, column = divmod(int(label), 5)
        pixels[row * 24 + 8 : row * 24 + 24, column * 12 : column * 12 + 12] = 255
        path = folder / f"{index:06d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return pd.DataFrame({"image": paths, "label": labels.astype(str), "example_id": [Path(p).stem for p in paths]})


def measure(variant: str, count: int) -> dict:
    from pipeline.stages import features
    from pipeline.stages.schema import Schema
    from pipeline.stages.training import TrainingConfig, train

    folder = scratch_folder("bench-gpu-")
    table = _write_images(folder, count)
    schema = Schema(label="label", task="classification", kinds={"image": "image"})
    cut = int(count * 0.9)
    preprocessor = features.fit(table.iloc[:cut], schema)
    arrays = features.split_arrays(table, preprocessor)

    def split(part: slice) -> features.SplitArrays:
        return features.SplitArrays(
            {k: v[part] for k, v in arrays.features.items()}, arrays.labels[part], arrays.example_ids[part]
        )

    profile_dir = folder / "profile"
    stamps: list[float] = []

    def on_epoch(done: int, planned: int) -> None:
        stamps.append(time.perf_counter())
        if variant != "profile":
            return
        import tensorflow as tf  # already loaded by the training

        if done == 2:  # epochs 1 and 2 fill the cache and trace: profile the third
            tf.profiler.experimental.start(str(profile_dir))
        elif done == 3:
            tf.profiler.experimental.stop()

    config = TrainingConfig(
        architecture="cnn",
        epochs=EPOCHS,
        batch_size=BATCH,
        patience=0,
        verbose=0,
        mixed_precision=variant == "mixed",
        xla=variant == "xla",
    )
    train(
        split(slice(0, cut)), split(slice(cut, None)), preprocessor, config, work_dir=folder / "work", on_epoch=on_epoch
    )
    seconds = float(np.median(np.diff(stamps)[1:]))  # epochs 3+: the first reads and decodes every file
    measured = {"variant": variant, "images_per_s": cut / seconds}
    if variant == "profile":
        measured["input_share"] = _input_share(profile_dir)
    return measured


def _input_share(profile_dir: Path) -> float:
    """Input time over step time, averaged over the profiled steps, from xprof's analysis."""
    from xprof.convert import raw_to_tool_data

    planes = sorted(glob.glob(str(profile_dir / "**" / "*.xplane.pb"), recursive=True))
    data, _ = raw_to_tool_data.xspace_to_tool_data(planes[-1:], "input_pipeline_analyzer", {})
    summary = json.loads(data)[1]["p"]
    step = float(summary["steptime_ms_average"])
    if step <= 0:
        raise RuntimeError(f"the profile has no device steps: {summary.get('input_conclusion')}")
    return float(summary["infeed_time_ms_avg"]) / step


def results(count: int) -> list[Result]:
    if not gpu_visible():
        return []
    from pipeline.common.environment import gpu_name

    measured = {variant: run_child("benchmarks.bench_gpu", variant, str(count), timeout=3600) for variant in VARIANTS}
    float32 = measured["float32"]["images_per_s"]
    return [
        Result(
            f"cnn images/s, float32 ({gpu_name()})",
            float32,
            None,
            "images/s",
            ">= 0",
            f"{SIDE}x{SIDE} RGB PNGs, batch {BATCH}, cached after epoch 1",
        ),
        Result(
            "cnn images/s, mixed precision",
            measured["mixed"]["images_per_s"],
            float32,
            "images/s",
            ">= 1.0",
            "baseline: float32 in the same run",
        ),
        Result(
            "cnn images/s, XLA",
            measured["xla"]["images_per_s"],
            float32,
            "images/s",
            ">= 1.0",
            "baseline: float32 in the same run",
        ),
        Result(
            "input waiting, share of step time",
            measured["profile"]["input_share"],
            None,
            "",
            "<= 0.05",
            "TensorFlow profiler (xprof input_pipeline_analyzer), one epoch after the cache is full",
        ),
    ]


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
