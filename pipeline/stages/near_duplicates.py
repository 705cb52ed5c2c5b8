"""Near-duplicates: examples a person would call the same, found so the split keeps them together.

Byte-identical rows are the validation's duplicate key. Near-duplicates go further:
- images by a perceptual hash of the picture as decoded (pipeline/stages/images.py): imagehash's
  difference hash, taken on an 9x8 reduction, so one icon at 32, 48 and 64 pixels, or a photo
  re-saved or turned upright by its EXIF orientation, hashes alike. Two images are near when
  their hashes differ in fewer than `threshold` of 64 bits;
- text by its normalised form: case, accents' compatibility forms, punctuation and spacing ignored;
- every other feature by its typed value. The label is ignored throughout: the same example with
  two labels is still one example.

`survey` runs in the validation stage (it decodes every training image once, which also finds
nearly blank ones); `near_groups` in the split stage, where `[SplitData] near_duplicate_threshold`
says how near is near.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.common.columns import EXAMPLE_ID, IMAGE_HASH_PREFIX, NEAR_KEY
from pipeline.common.hashing import row_hashes
from pipeline.stages.images import Background, is_blank, read_image
from pipeline.stages.schema import Schema
from pipeline.stages.settings import DEFAULT_THRESHOLD, HASH_BITS  # noqa: F401 - re-exported

HASH_DRAFT = 64  # a JPEG is decoded at no less than 64 x 64 for hashing: plenty for a 9 x 8 hash
BLANK_WARNING_SHARE = 0.1  # this share of blank images (or more) is a warning, not a few odd files
SHOWN_PAIRS = 5
SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Survey:
    """What decoding every training image found, beside the near-duplicate keys."""

    keys: pd.DataFrame  # NEAR_KEY, and IMAGE_HASH_PREFIX + column per image column; the table's index
    warnings: list[str] = field(default_factory=list)
    # Per image column, the rows whose file passed validation's checks but did not decode whole.
    unreadable: dict[str, pd.Series] = field(default_factory=dict)


@dataclass(frozen=True)
class NearGroups:
    """Rows joined because they are near-duplicates, as graph edges and as a summary."""

    edges: tuple[np.ndarray, np.ndarray]  # row positions linked (each pair once)
    summary: dict  # groups, examples, pairs (the first few, with their hash distance)


def normalise_text(value) -> str | None:
    """Case, compatibility forms, punctuation and runs of spaces ignored: 'Hello,  World!' is 'hello world'."""
    if not isinstance(value, str):
        return None
    folded = unicodedata.normalize("NFKC", value).casefold()
    kept = "".join(" " if unicodedata.category(char).startswith("P") else char for char in folded)
    return SPACES.sub(" ", kept).strip()


def survey(valid: pd.DataFrame, schema: Schema, *, background: Background | None, source: str) -> Survey:
    """Near-duplicate keys of the validated rows, and a warning per image column that decodes blank.

    Args:
        source: the data set, for the warning's first word.
    """
    features = valid[[column for column in schema.features if schema.kinds[column] != "image"]].copy()
    for column in schema.columns_of("text"):
        features[column] = features[column].map(normalise_text)
    keys = pd.DataFrame({NEAR_KEY: row_hashes(features)}, index=valid.index)
    warnings, unreadable = [], {}
    for column in schema.columns_of("image"):
        hashes, blank = _image_hashes(valid[column], background)
        keys[IMAGE_HASH_PREFIX + column] = hashes
        unreadable[column] = valid[column].notna() & hashes.isna()
        read = int(hashes.notna().sum())
        if read and blank.sum() >= BLANK_WARNING_SHARE * read:
            onto = "with transparency dropped" if background is None else f"onto {_colour(background)}"
            warnings.append(
                f"{source}: {int(blank.sum())} of {read} images in {column!r} ({blank.sum() / read:.0%}) are "
                f"nearly blank after decoding {onto}: is the picture in a channel this reading loses? "
                "(set [FitPreprocessor] image_background to a colour the shapes stand out on)"
            )
    return Survey(keys, warnings, unreadable)


def near_groups(table: pd.DataFrame, schema: Schema, threshold: int) -> NearGroups:
    """Rows that are near-duplicates of one another (see the module docstring), by position.

    Rows with image columns are compared by the first one's hash, among rows whose other
    features agree; rows without images by their near-duplicate key alone.
    """
    images = schema.columns_of("image")
    hash_column = IMAGE_HASH_PREFIX + images[0] if images else None
    if threshold <= 0 or NEAR_KEY not in table.columns:  # no key: validated before 0.2, nothing to join by
        return NearGroups((np.empty(0, int), np.empty(0, int)), {"groups": 0, "examples": 0, "pairs": []})
    keys = table[NEAR_KEY].astype(str).to_numpy()
    if hash_column and hash_column in table.columns:
        hashes = table[hash_column]
        present = hashes.notna().to_numpy()
        values = np.array([int(h, 16) if isinstance(h, str) else 0 for h in hashes], dtype=np.uint64)
        edges, distances = _hash_edges(keys, values, present, threshold)
    else:
        edges, distances = _equal_edges(keys), None
    return NearGroups(edges, _summary(table, edges, distances))


def _image_hashes(paths: pd.Series, background: Background | None) -> tuple[pd.Series, pd.Series]:
    import imagehash  # loaded to validate images, not to import the stage

    hashes, blank = pd.Series(None, index=paths.index, dtype=object), pd.Series(False, index=paths.index)
    for index, path in paths.dropna().items():
        try:
            image = read_image(path, channels=1, background=background, draft=HASH_DRAFT)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            continue  # Survey.unreadable: the validation task rejects the row
        hashes[index] = str(imagehash.dhash(image))
        blank[index] = is_blank(image)
    return hashes, blank


def _equal_edges(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows with one key, chained: the first with the second, the second with the third..."""
    codes, _ = pd.factorize(keys)
    order = np.argsort(codes, kind="stable")
    same = codes[order][1:] == codes[order][:-1]
    return order[:-1][same], order[1:][same]


def _hash_edges(keys, hashes, present, threshold) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Edges between rows whose keys agree and whose hashes differ in fewer than threshold bits.

    Equal hashes are chained first; the distinct ones are compared only within buckets: by the
    pigeonhole principle two hashes that differ in fewer than `threshold` bits agree on at least
    one of `threshold` bands of bits, so near linear time on real data instead of every pair.
    """
    rows = np.flatnonzero(present)
    key_codes = pd.factorize(keys[rows])[0]
    same_a, same_b = _equal_edges(np.char.add(key_codes.astype(str), np.char.add(":", hashes[rows].astype(str))))
    sources, targets, distances = [rows[same_a]], [rows[same_b]], [np.zeros(len(same_a), int)]
    distinct = pd.DataFrame({"key": key_codes, "hash": hashes[rows], "row": rows}).drop_duplicates(["key", "hash"])
    width = -(-HASH_BITS // threshold)
    for shift in range(0, HASH_BITS, width):
        part = (distinct["hash"].to_numpy() >> np.uint64(shift)) & np.uint64((1 << min(width, HASH_BITS - shift)) - 1)
        for members in _buckets(distinct["key"].to_numpy(), part, distinct["row"].to_numpy()):
            left, right = np.triu_indices(len(members), k=1)
            apart = np.bitwise_count(hashes[members[left]] ^ hashes[members[right]]).astype(int)
            near = apart < threshold
            sources.append(members[left][near])
            targets.append(members[right][near])
            distances.append(apart[near])
    pairs = pd.DataFrame(
        {"a": np.concatenate(sources), "b": np.concatenate(targets), "bits": np.concatenate(distances)}
    ).drop_duplicates(["a", "b"])
    return (pairs["a"].to_numpy(), pairs["b"].to_numpy()), pairs["bits"].to_numpy()


def _buckets(keys: np.ndarray, parts: np.ndarray, rows: np.ndarray):
    """The rows of every (key, band value) shared by two rows or more."""
    order = np.lexsort((parts, keys))
    keys, parts, rows = keys[order], parts[order], rows[order]
    starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]) | (parts[1:] != parts[:-1]), True])
    for start, end in zip(starts[:-1], starts[1:]):
        if end - start > 1:
            yield rows[start:end]


def _summary(table: pd.DataFrame, edges, distances) -> dict:
    """How many groups, how many examples in them, and a few pairs (the least alike first)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    source, target = edges
    if not len(source):
        return {"groups": 0, "examples": 0, "pairs": []}
    graph = coo_matrix((np.ones(len(source)), (source, target)), shape=(len(table), len(table)))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    ids = table[EXAMPLE_ID].astype(str).to_numpy()
    order = np.argsort(-distances, kind="stable") if distances is not None else np.arange(len(source))
    pairs = [
        {
            "a": ids[source[i]],
            "b": ids[target[i]],
            **({"bits_apart": int(distances[i])} if distances is not None else {}),
        }
        for i in order[:SHOWN_PAIRS]
    ]
    by = "image hash" if distances is not None else "equal values"  # what joined them, for the report's words
    return {"groups": int((sizes > 1).sum()), "examples": int(sizes[sizes > 1].sum()), "pairs": pairs, "by": by}


def _colour(background: Background) -> str:
    names = {(255, 255, 255): "white", (0, 0, 0): "black"}
    return names.get(tuple(background), "#{:02x}{:02x}{:02x}".format(*background))
