"""What a model's live quality is read against: always the training split's most frequent class
(classification) or always its mean (regression), read from the model's own folders.

The evaluation's `majority` and `mean` baselines are these predictors, but metrics.json keeps
only their scores. The class and the mean themselves are where training left them: the split's
checks count each class per split, and the fitted preprocessor keeps the training target's mean.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.artifacts.folder import read_json
from pipeline.artifacts.model import PREPROCESSOR
from pipeline.artifacts.split import CHECKS
from pipeline.common.formatting import natural_key
from pipeline.layout import STAGE_FOLDERS, VERSION_FILE

logger = logging.getLogger(__name__)


def training_majority_class(evaluation_path: str | Path | None) -> str | None:
    """The training split's most frequent class of the model an evaluation folder evaluated.

    Found through the evaluation's own lineage (its version.json names the split it used), so it
    is the class the `majority` baseline of that evaluation predicted. A tie goes to the first
    class in natural order, as the baseline's argmax over the sorted classes does. None when the
    folders are gone or predate the split's class counts.
    """
    if not evaluation_path:
        return None
    evaluation = Path(evaluation_path)
    try:
        split_version = (read_json(evaluation / VERSION_FILE).get("upstream") or {}).get("SplitData")
        if not split_version:
            return None
        # Stage folders are siblings under the data root: <root>/06_evaluation/<v>, <root>/03_split/<v>.
        checks = read_json(evaluation.parents[1] / STAGE_FOLDERS["split"] / split_version / CHECKS)
    except (OSError, ValueError) as error:
        logger.warning("the training majority class of %s is unknown: %s", evaluation, error)
        return None
    train = {
        str(name): int(per_split.get("train", 0)) for name, per_split in (checks.get("class_counts") or {}).items()
    }
    if not any(train.values()):
        return None
    return max(sorted(train, key=natural_key), key=lambda name: train[name])


def training_mean(model_path: str | Path | None) -> float | None:
    """The training target's mean, as the model's preprocessor was fitted (regression); None
    when the folder is gone or the preprocessor is a classifier's."""
    if not model_path:
        return None
    try:
        document = read_json(Path(model_path) / PREPROCESSOR)
    except (OSError, ValueError) as error:
        logger.warning("the training mean of %s is unknown: %s", model_path, error)
        return None
    value = document.get("target_mean")
    return float(value) if value is not None and "classes" not in document else None
