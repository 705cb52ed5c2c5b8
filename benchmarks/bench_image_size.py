"""One huge image first in the training data does not size the model (issue 19, #6): fitting the
preprocessor on small images with a huge flat PNG first, against the same small images alone.

Each fit runs in a child process, so its peak memory is the fit's own. The input size chosen must
be the small images' in both; time and memory should be about the same (the sizes are read from
file headers: the huge image is never decoded to choose it).

python -m benchmarks.run_all --only image-size     (the table)
python -m benchmarks.bench_image_size FOLDER [FIRST] (one fit in this process; prints JSON)
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from benchmarks.common import Result, peak_rss_mb, run_child, scratch_folder, stopwatch

SMALL_SIDE = 28


def results(huge_side: int, images: int = 200) -> list[Result]:
    from PIL import Image

    folder = scratch_folder("bench-image-size-")
    for index in range(images):
        Image.new("RGB", (SMALL_SIDE, SMALL_SIDE), (index % 256, 0, 0)).save(folder / f"small-{index:04d}.png")
    huge = folder / "huge.png"
    Image.new("RGB", (huge_side, huge_side), (200, 200, 200)).save(huge)  # flat: a few hundred KB
    alone = run_child("benchmarks.bench_image_size", str(folder))
    with_huge = run_child("benchmarks.bench_image_size", str(folder), str(huge))
    shapes = f"input {with_huge['shape']} with the huge image first, {alone['shape']} without"
    return [
        Result(
            f"fit the preprocessor, a {huge_side}x{huge_side} PNG ({huge.stat().st_size // 1024} KB) first, seconds",
            with_huge["seconds"],
            alone["seconds"],
            "s",
            "<= 3.0",
            shapes,
        ),
        Result(
            f"fit the preprocessor, a {huge_side}x{huge_side} PNG first, peak memory",
            with_huge["peak_mb"],
            alone["peak_mb"],
            "MB",
            "<= 1.5",
            "the same small images alone are the baseline",
        ),
    ]


def _fit(folder: Path, first: str | None) -> dict:
    """One fit on the folder's small images, `first` before them: seconds, peak MB, input shape."""
    import pandas as pd

    from pipeline.stages.features import fit
    from pipeline.stages.schema import Schema

    paths = ([first] if first else []) + sorted(str(path) for path in folder.glob("small-*.png"))
    train = pd.DataFrame({"photo": paths, "y": ["a", "b"] * (len(paths) // 2) + ["a"] * (len(paths) % 2)})
    warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning for the huge one
    with stopwatch() as measured:
        shape = fit(train, Schema(label="y", task="classification", kinds={"photo": "image"})).image["photo"]
    return {
        "seconds": measured["seconds"],
        "peak_mb": peak_rss_mb(),
        "shape": f"{shape.height}x{shape.width}x{shape.channels}",
    }


if __name__ == "__main__":
    print(json.dumps(_fit(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)))
