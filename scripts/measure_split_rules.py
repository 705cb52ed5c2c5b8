"""The figures behind two defaults of the split stage, measured on real data (docs/data.md).

1. `[SplitData] near_duplicate_threshold`: for each threshold, how many of one icon's copies at
   32, 48 and 64 pixels (Debian's adwaita-icon-theme, redrawn per size) end in one group, and
   how many groups form on scikit-learn's digits, where no two files are copies.
2. split_warnings.LABEL_SHIFT: the largest Jensen-Shannon distance between the training labels
   and a held-out split's over 20 random stratified splits of scikit-learn's data sets, and the
   distance a time split of Seattle's weather reaches (vega_datasets' seattle-weather.csv).

    .venv/bin/python scripts/measure_split_rules.py [--icons DIR] [--weather CSV]
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.common.columns import DUPLICATE_KEY, EXAMPLE_ID
from pipeline.stages.images import WHITE
from pipeline.stages.near_duplicates import near_groups, survey
from pipeline.stages.schema import Schema
from pipeline.stages.split import SplitConfig, split

logger = logging.getLogger("measure_split_rules")
THRESHOLDS = (1, 2, 3, 4, 6, 8)
ICON_SIZES = ("32x32", "48x48", "64x64")
ICON_CLASSES = ("actions", "status", "devices", "places", "mimetypes")
IMAGES = Schema(label="label", task="classification", kinds={"image": "image"})


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--icons", default="/usr/share/icons/Adwaita", help="an icon theme with size folders")
    parser.add_argument("--weather", default="", help="vega_datasets' seattle-weather.csv, for a time split")
    arguments = parser.parse_args()
    if Path(arguments.icons).is_dir():
        icon_thresholds(Path(arguments.icons))
    digit_thresholds()
    label_shift(arguments.weather)


def _surveyed(paths: list[str], labels: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({"image": paths, "label": labels, EXAMPLE_ID: [str(i) for i in range(len(paths))]})
    return table.join(survey(table, IMAGES, background=WHITE, source="").keys)


def _groups(table: pd.DataFrame, threshold: int) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    source, target = near_groups(table, IMAGES, threshold).edges
    size = len(table)
    return connected_components(coo_matrix((np.ones(len(source)), (source, target)), shape=(size, size)))[1]


def icon_thresholds(theme: Path) -> None:
    paths = [p for size in ICON_SIZES for cls in ICON_CLASSES for p in sorted((theme / size / cls).glob("*.png"))]
    names = [f"{p.parent.name}/{p.stem}" for p in paths]
    table = _surveyed([str(p) for p in paths], [p.parent.name for p in paths])
    logger.info("%s: %d icons, %d names at %s", theme, len(paths), len(set(names)), ", ".join(ICON_SIZES))
    logger.info("threshold  names whole in one group  groups  examples in groups  largest group")
    for threshold in THRESHOLDS:
        groups = pd.Series(_groups(table, threshold))
        whole = groups.groupby(names).nunique().eq(1).mean()
        sizes = groups.value_counts()
        logger.info(
            "%9d  %24.1f%%  %6d  %18d  %13d",
            threshold,
            100 * whole,
            (sizes > 1).sum(),
            sizes[sizes > 1].sum(),
            sizes.max(),
        )


def digit_thresholds() -> None:
    import tempfile

    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, pixels in enumerate(digits.images):
            path = f"{folder}/{i}.png"
            Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(path)
            paths.append(path)
        table = _surveyed(paths, digits.target.astype(str).tolist())
        logger.info("scikit-learn digits: %d images", len(paths))
        logger.info("threshold  groups  examples in groups  largest group  groups with two labels")
        for threshold in THRESHOLDS:
            groups = pd.Series(_groups(table, threshold))
            sizes = groups.value_counts()
            mixed = (pd.Series(digits.target).groupby(groups).nunique() > 1).sum()
            logger.info(
                "%9d  %6d  %18d  %13d  %22d", threshold, (sizes > 1).sum(), sizes[sizes > 1].sum(), sizes.max(), mixed
            )


def _largest_shift(table: pd.DataFrame, label: str, **split_options) -> float:
    table = table.assign(**{EXAMPLE_ID: [f"r{i}" for i in range(len(table))]})
    table[DUPLICATE_KEY] = table[EXAMPLE_ID]
    manifest, _ = split(table, label=label, task="classification", **split_options)
    shares = pd.crosstab(table[label].astype(str).to_numpy(), manifest["split"].to_numpy(), normalize="columns")
    return max(float(jensenshannon(shares["train"], shares[name], base=2)) for name in ("validation", "test"))


def label_shift(weather: str) -> None:
    from sklearn import datasets

    logger.info("largest Jensen-Shannon distance, train vs a held-out split, 20 random stratified splits")
    for name in ("iris", "wine", "breast_cancer", "digits"):
        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        largest = max(_largest_shift(frame, "target", config=SplitConfig(seed=seed)) for seed in range(20))
        logger.info("  %-14s %5d rows: %.3f", name, len(frame), largest)
    if weather:
        frame = pd.read_csv(weather)
        frame["date"] = pd.to_datetime(frame["date"], utc=True)
        distance = _largest_shift(frame, "weather", config=SplitConfig(), time_column="date")
        logger.info("  %s, split by time: %.3f", re.sub(r".*/", "", weather), distance)


if __name__ == "__main__":
    main()
