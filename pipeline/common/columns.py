"""Column names every layer shares: the raw stage's source columns, the ids validation adds, the
split, and the frames the monitoring stage hands to the store."""

from __future__ import annotations

# Added by the raw stage so every problem can be traced to its file and row.
SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
# Why the raw stage could not read a row whole (too many fields); validation rejects such rows.
SOURCE_PROBLEM = "_source_problem"
SOURCE_COLUMNS = (SOURCE_FILE, SOURCE_ROW, SOURCE_PROBLEM)
# Image folders have no id column: the file name (without extension) is the example id.
IMAGE_ID_COLUMN = "image_id"
IMAGE_PATH_COLUMN = "image"
IMAGE_GROUP_COLUMN = "image_group"  # what `[dataset] group_pattern` finds in an image folder's file names

# Added by validation.
EXAMPLE_ID = "example_id"
EXAMPLE_ID_LENGTH = 200  # characters an id may have: predictions.example_id and feedback.example_id
DUPLICATE_KEY = "duplicate_key"  # hash of the feature values: equal keys are exact duplicates
REASON = "reason"  # why a row was rejected
# Added by the validation stage's survey of the training rows, for the split (near_duplicates.py).
NEAR_KEY = "near_duplicate_key"  # hash of the features with text normalised and images left out
IMAGE_HASH_PREFIX = "image_hash:"  # + image column: the perceptual hash of the decoded picture

# Names a supplier's column may not take: overnight adds columns of these names to the rows it
# reads, and a supplier's column of the same name would lose its values to them (or crash the
# read). `example_id` is allowed as the configured id column, whose values it is anyway.
SUPPLIER_RESERVED = (*SOURCE_COLUMNS, DUPLICATE_KEY, NEAR_KEY, REASON)
SUPPLIER_RESERVED_PREFIXES = (IMAGE_HASH_PREFIX,)


def reserved_name(name: str) -> bool:
    """True for a column name overnight keeps for its own columns (SUPPLIER_RESERVED)."""
    return name in SUPPLIER_RESERVED or name.startswith(SUPPLIER_RESERVED_PREFIXES)


# The split manifest.
SPLIT = "split"
SPLITS = ("train", "validation", "test")

# What scoring, monitoring and late labels hand to the store.
PREDICTION_COLUMNS = ("example_id", "prediction", "score", "probabilities")
STATS_COLUMNS = ("feature", "statistic", "batch_value", "reference_value")
DRIFT_COLUMNS = ("feature", "method", "score", "threshold", "alert")
# What a drift row's numbers alone do not say: why a check did not run (its score is NaN), or what
# a class_share score counted. Monitoring's frames carry it beside DRIFT_COLUMNS; the drift folder
# keeps it in summary.json ("notes"), not the `drift` table, whose columns stay the contract's.
DRIFT_NOTE = "note"
DRIFT_FRAME_COLUMNS = (*DRIFT_COLUMNS, DRIFT_NOTE)
PREDICTION_FEATURE = "(prediction)"  # the drift feature of the predicted-class check
FEEDBACK_COLUMNS = ("example_id", "label")
ANNOTATOR = "annotator"  # who gave a label: a feedback file's column (`[labeling] annotator_column`)
ANNOTATOR_LENGTH = 200  # characters of an annotator's name
