"""Example data from a package that ships it: scikit-learn's handwritten digits, as PNG files.

Training digits go to an image folder (one sub-folder per class). Held-back digits become
nightly batches (flat folders of unlabeled images, the file name is the example id), their
labels arrive a day later as feedback CSVs, and the last night's images are shifted so that the
demo raises a drift alert.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.datasets import load_digits

from pipeline.common.columns import IMAGE_ID_COLUMN

logger = logging.getLogger(__name__)

NIGHTS = 5
PER_NIGHT = 60
FIRST_NIGHT = datetime.date(2026, 11, 1)
LABELED_SHARE = 0.8  # annotators label most, not all: the rest waits in the labeling queue
SEED = 0


@dataclass(frozen=True)
class ExampleData:
    training_images: int
    nights: list[str]  # batch dates, oldest first; the last one is shifted
    feedback_dates: list[str]


def write_examples(
    data_root: str | Path, *, nights: int = NIGHTS, per_night: int = PER_NIGHT, first_night: datetime.date = FIRST_NIGHT
) -> ExampleData:
    """Training digits under raw/digits, nightly batches under incoming/, labels under feedback/."""
    root = Path(data_root)
    digits = load_digits()
    pixels = _to_pixels(digits.images)
    order = np.random.default_rng(SEED).permutation(len(pixels))
    held_back = order[: nights * per_night]
    training = np.sort(order[nights * per_night :])
    _write_training(root / "raw" / "digits", pixels, digits.target, training, held_back)
    dates, feedback_dates = [], []
    for night in range(nights):
        date = first_night + datetime.timedelta(days=night)
        indices = np.sort(held_back[night * per_night : (night + 1) * per_night])
        shifted = night == nights - 1
        _write_night(root / "incoming" / date.isoformat(), pixels, indices, shifted)
        arrival = date + datetime.timedelta(days=1)
        _write_feedback(root / "feedback" / arrival.isoformat(), digits.target, indices, seed=night)
        dates.append(date.isoformat())
        feedback_dates.append(arrival.isoformat())
    # The day the last labels arrive is a night without images: its folder exists, empty (a night
    # whose folder is missing is an export that never came, and fails).
    (root / "incoming" / feedback_dates[-1]).mkdir(parents=True, exist_ok=True)
    logger.info("%d training digits; nights %s (the last is shifted)", len(training), ", ".join(dates))
    return ExampleData(len(training), dates, feedback_dates)


def write_digits(root: str | Path, limit: int | None = None) -> int:
    """The first `limit` digits (all 1,797 by default) as an image folder; for small tests."""
    digits = load_digits()
    indices = np.arange(len(digits.images))[:limit]
    _write_training(Path(root), _to_pixels(digits.images), digits.target, indices, np.array([], dtype=int))
    return len(indices)


def _to_pixels(images: np.ndarray) -> np.ndarray:
    return np.round(images * (255 / 16)).astype(np.uint8)  # 0..16 intensities -> 8x8 grayscale


def _name(index: int) -> str:
    return f"digit-{index:04d}"


def _write_training(folder: Path, pixels, targets, indices, held_back) -> None:
    for index in indices:
        _save(pixels[index], folder / str(targets[index]) / f"{_name(index)}.png")
    # A folder written by an older version of this command may hold digits now held back.
    for index in held_back:
        (folder / str(targets[index]) / f"{_name(index)}.png").unlink(missing_ok=True)


def _write_night(folder: Path, pixels, indices, shifted: bool) -> None:
    for index in indices:
        image = pixels[index]
        if shifted:
            # Two pixels right and one down, dimmer: a scanner that drifted. Easy to see, and
            # it moves the centre of mass the drift monitor watches.
            image = (np.roll(np.roll(image, 2, axis=1), 1, axis=0) * 0.7).astype(np.uint8)
        _save(image, folder / f"{_name(index)}.png")


def _write_feedback(folder: Path, targets, indices, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labeled = np.sort(rng.choice(indices, size=int(len(indices) * LABELED_SHARE), replace=False))
    labels = pd.DataFrame({IMAGE_ID_COLUMN: [_name(i) for i in labeled], "label": targets[labeled]})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labels.csv"
    if not path.exists():
        labels.to_csv(path.with_suffix(".tmp"), index=False)
        path.with_suffix(".tmp").replace(path)


def _save(image: np.ndarray, path: Path) -> None:
    """Write once: rewriting identical files would change their mtime, not their content."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    Image.fromarray(image, mode="L").save(temporary, format="PNG")
    temporary.replace(path)
