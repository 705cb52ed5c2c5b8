"""Split stage: train, validation and test sets that share no example, group or future.

Rows are first joined into units that must stay together: exact duplicates (same duplicate
key), near-duplicates (pipeline/stages/near_duplicates.py) and, when configured, rows of one
group. Units are then placed whole: by time when a time column is set, else shuffled,
stratified by label for classification. A split that is leak-free but cannot be trusted (a
class that no held-out split has, a label mix that shifts sharply) gets warnings
(split_warnings.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.common.columns import DUPLICATE_KEY, EXAMPLE_ID, SOURCE_FILE, SOURCE_ROW, SPLIT, SPLITS
from pipeline.errors import DataError
from pipeline.stages.dates import parse_times
from pipeline.stages.near_duplicates import DEFAULT_THRESHOLD, HASH_BITS, NearGroups
from pipeline.stages.split_warnings import split_warnings


@dataclass(frozen=True)
class SplitConfig:
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 42
    stratify: bool = True  # classification only
    # Images whose perceptual hashes differ in fewer bits than this (of 64) are one example, as are
    # texts equal once normalised; 0 keeps near-duplicates apart (they are still counted).
    near_duplicate_threshold: int = DEFAULT_THRESHOLD

    def __post_init__(self):
        if not (
            0 <= self.validation_fraction < 1
            and 0 < self.test_fraction < 1
            and self.validation_fraction + self.test_fraction < 1
        ):
            raise ValueError("split fractions must be in [0, 1) and leave rows for training")
        if not 0 <= self.near_duplicate_threshold <= HASH_BITS:
            raise ValueError(f"[SplitData] near_duplicate_threshold must be within 0 and {HASH_BITS}")


def split(
    table: pd.DataFrame,
    *,
    label: str,
    task: str,
    config: SplitConfig,
    group_column: str = "",
    time_column: str = "",
    near: NearGroups | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Assign every row to train, validation or test.

    Args:
        near: the near-duplicates (near_groups); joined into units unless the config's
            threshold is 0, and counted in the checks either way.

    Returns:
        The manifest (example_id, split, in the table's row order) and the leakage checks, with
        a "warnings" list (empty when the split can be trusted).

    Raises:
        DataError: the checks failed (a bug, never expected) or too few rows to split.
    """
    if len(table) < 3:
        raise DataError(f"only {len(table)} usable rows; at least 3 are needed for train, validation and test")
    joined = near if near is not None and config.near_duplicate_threshold > 0 else None
    units = _units(table, group_column, joined.edges if joined else None)
    if time_column:
        assignment = _by_time(table, units, time_column, config)
    else:
        strata = table[label] if task == "classification" and config.stratify else pd.Series(0, index=table.index)
        assignment = _shuffled(units, strata, config)
    manifest = pd.DataFrame({EXAMPLE_ID: table[EXAMPLE_ID].to_numpy(), SPLIT: assignment})
    _require_held_out_rows(assignment, units, config)
    checks = leakage_checks(
        table, manifest[SPLIT], label=label, task=task, units=units, group_column=group_column, time_column=time_column
    )
    if near is not None:
        checks["near_duplicates"] = near_duplicate_check(near, manifest[SPLIT].to_numpy(), config)
    failed = [name for name, check in checks.items() if isinstance(check, dict) and check.get("passed") is False]
    if failed:
        raise DataError(f"split failed its leakage checks: {', '.join(failed)}")
    checks["warnings"] = split_warnings(checks, task=task, labels=table[label], splits=manifest[SPLIT].to_numpy())
    return manifest, checks


def _require_held_out_rows(assignment: np.ndarray, units: np.ndarray, config: SplitConfig) -> None:
    """A held-out split that was asked for but got no row: its scores would be missing, not zero.

    It happens on tiny data (the fraction of each class rounds to no row), and when rows that
    must stay together (identical features, near-duplicates, groups) form a few large units,
    which a time split sends wholly to training.
    """
    for name, fraction in (("validation", config.validation_fraction), ("test", config.test_fraction)):
        if fraction > 0 and not (assignment == name).any():
            sizes = np.bincount(units)
            together = (
                f" (rows that must stay together: identical features, near-duplicates or groups; "
                f"the largest has {sizes.max()} rows)"
                if len(sizes) < len(units)
                else ""
            )
            raise DataError(
                f"split: {name} has no rows although {name}_fraction = {fraction}: {fraction} of "
                f"{len(units)} rows in {len(sizes)} units{together}, taken per class where the split is "
                f"stratified, rounds to none; add rows or raise {name}_fraction"
            )


def near_duplicate_check(near: NearGroups, splits: np.ndarray, config: SplitConfig) -> dict:
    """Groups found, examples they cover, a few pairs, and how many groups straddle splits.

    Joined (threshold > 0), a straddling group is a failed check, a bug; kept apart (0), it is
    counted for the warning and nothing fails.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    source, target = near.edges
    graph = coo_matrix((np.ones(len(source)), (source, target)), shape=(len(splits), len(splits)))
    _, component = connected_components(graph, directed=False)
    per_group = pd.Series(splits).groupby(component).nunique()
    straddling = int((per_group > 1).sum())
    joined = config.near_duplicate_threshold > 0
    check = {
        "threshold": config.near_duplicate_threshold if joined else 0,
        "kept_together": joined,
        **near.summary,
        "straddling": straddling,
    }
    if joined:
        check["passed"] = straddling == 0
    return check


def _units(table: pd.DataFrame, group_column: str, near_edges=None) -> np.ndarray:
    """A unit number per row: rows linked by a duplicate key, a near-duplicate or a group share a unit."""
    from scipy.sparse import coo_matrix  # loaded when splitting, not when the split task is only checked
    from scipy.sparse.csgraph import connected_components

    keys = [table[DUPLICATE_KEY].astype(str)]
    if group_column:
        groups = table[group_column]
        # A row without a group is a group of its own, not one big "missing" group.
        own_row = pd.Series([f"row:{i}" for i in range(len(table))], index=table.index)
        keys.append(("group:" + groups.astype(str)).where(groups.notna(), own_row))
    # A bipartite graph rows <-> key values; its connected components are the units.
    rows = np.arange(len(table))
    offset, edges = len(table), []
    for key in keys:
        code, _ = pd.factorize(key)
        edges.append((rows, code + offset))
        offset += code.max() + 1
    if near_edges is not None:
        edges.append(near_edges)  # row to row: both ends are row numbers
    source = np.concatenate([e[0] for e in edges])
    target = np.concatenate([e[1] for e in edges])
    graph = coo_matrix((np.ones(len(source)), (source, target)), shape=(offset, offset))
    _, component = connected_components(graph, directed=False)
    return component[: len(table)]


def _shuffled(units: np.ndarray, strata: pd.Series, config: SplitConfig) -> np.ndarray:
    rng = np.random.default_rng(config.seed)
    frame = pd.DataFrame({"unit": units, "stratum": strata.astype(str).to_numpy()})
    # A unit belongs to the stratum most of its rows have.
    unit_stratum = frame.groupby("unit")["stratum"].agg(lambda s: s.mode().iloc[0])
    unit_size = frame.groupby("unit").size()
    unit_split = {}
    for _, members in unit_stratum.groupby(unit_stratum):
        order = rng.permutation(members.index.to_numpy())
        sizes = unit_size.loc[order].to_numpy()
        unit_split.update(zip(order, _place(sizes, config)))
    return np.array([unit_split[u] for u in units], dtype=object)


def _place(sizes: np.ndarray, config: SplitConfig) -> list[str]:
    """test first, then validation, then train, by cumulative row count; rounding favours train.

    The last unit always trains: a class whose rows form one unit (three copies of one example,
    one group) must be learned, not only tested.
    """
    total = sizes.sum()
    test_rows = round(total * config.test_fraction)
    validation_rows = round(total * config.validation_fraction)
    cumulative = np.cumsum(sizes) - sizes  # rows placed before each unit
    placed = [
        "test" if before < test_rows else "validation" if before < test_rows + validation_rows else "train"
        for before in cumulative
    ]
    placed[-1] = "train"
    return placed


def _by_time(table: pd.DataFrame, units: np.ndarray, time_column: str, config: SplitConfig) -> np.ndarray:
    """Oldest rows train, newer validate, newest test; a unit goes where its oldest row goes."""
    times = _as_time(table, time_column)
    order = np.argsort(times.to_numpy(), kind="stable")
    rank = np.empty(len(table), dtype=int)
    rank[order] = np.arange(len(table))
    # Whole row counts, as _place uses: 1 - 0.2 - 0.1 is not 0.7 in floating point.
    test_rows = round(len(table) * config.test_fraction)
    validation_rows = round(len(table) * config.validation_fraction)
    train_rows = len(table) - test_rows - validation_rows
    by_row = np.where(rank < train_rows, 0, np.where(rank < train_rows + validation_rows, 1, 2))
    by_unit = pd.Series(by_row).groupby(units).transform("min").to_numpy()
    return np.array(SPLITS, dtype=object)[by_unit]


def _as_time(table: pd.DataFrame, time_column: str) -> pd.Series:
    """The time column as validation typed it (numbers or dates read by one rule); DataError naming
    file and rows for values that are neither."""
    values = table[time_column]
    typed = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
    times = values if typed else parse_times(values).times
    bad = times.isna().to_numpy()
    if bad.any():
        rows = table[SOURCE_ROW].to_numpy()[bad] if SOURCE_ROW in table.columns else np.flatnonzero(bad) + 1
        files = table[SOURCE_FILE].to_numpy()[bad] if SOURCE_FILE in table.columns else []
        where = f"{files[0]}: " if len(files) else ""
        shown = ", ".join(str(int(row)) for row in rows[:10])
        raise DataError(f"{where}time column {time_column!r}: rows [{shown}] are not dates or numbers")
    return times


def leakage_checks(
    table: pd.DataFrame,
    splits: pd.Series,
    *,
    label: str,
    task: str,
    units: np.ndarray | None = None,
    group_column: str = "",
    time_column: str = "",
) -> dict:
    """Checks that no duplicate, group or later time crosses from one split to another.

    With a time column, every held-out unit (rows kept together) must start no earlier than the
    last training unit starts.
    """
    splits = pd.Series(np.asarray(splits), index=table.index)
    checks = {"rows": splits.value_counts().reindex(SPLITS, fill_value=0).astype(int).to_dict()}
    checks["duplicates_within_one_split"] = _within_one_split(table[DUPLICATE_KEY], splits)
    if group_column:
        checks["groups_within_one_split"] = _within_one_split(table[group_column], splits)
    if time_column:
        times = _as_time(table, time_column)
        if units is not None:
            times = times.groupby(units).transform("min")
        train_last = times[splits == "train"].max()
        later = times[splits != "train"].min()
        checks["time_order"] = {
            "passed": bool(pd.isna(later) or train_last <= later),
            "train_last": str(train_last),
            "held_out_first": str(later),
        }
    if task == "classification":
        counts = pd.crosstab(table[label].astype(str), splits)
        checks["class_counts"] = {str(k): {s: int(v) for s, v in row.items()} for k, row in counts.iterrows()}
        missing_in_train = counts.index[counts.get("train", pd.Series(0, index=counts.index)) == 0].tolist()
        checks["every_class_in_train"] = {"passed": not missing_in_train, "missing": missing_in_train}
    return checks


def _within_one_split(keys: pd.Series, splits: pd.Series) -> dict:
    per_key = splits.groupby(keys.astype(str)).nunique()
    straddling = per_key[per_key > 1].index.tolist()
    return {"passed": not straddling, "straddling": straddling[:20], "count": len(straddling)}
