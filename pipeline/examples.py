"""Example data from a package that ships it: scikit-learn's handwritten digits, as PNG files."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

logger = logging.getLogger(__name__)


def write_digits(root: str | Path, limit: int | None = None) -> int:
    """Write the 1,797 digits (or the first `limit`) as an image folder, one sub-folder per class.

    Returns the number of digits in the folder.

    Rewriting identical images leaves existing files untouched, so the data version stays the same.
    """
    root = Path(root)
    digits = load_digits()
    # 0..16 intensities -> 0..255 grayscale, 8x8 pixels.
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)
    written = 0
    pixels, targets = pixels[:limit], digits.target[:limit]
    for index, (image, label) in enumerate(zip(pixels, targets)):
        path = root / str(label) / f"digit-{index:04d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            Image.fromarray(image, mode="L").save(temporary, format="PNG")
            temporary.replace(path)
            written += 1
    logger.info("%d digits in %s (%d new files)", len(pixels), root, written)
    return len(pixels)
