"""Row hashes: a stable digest of each row's values, for content ids, duplicate and near-duplicate keys."""

from __future__ import annotations

import pandas as pd


def row_hashes(frame: pd.DataFrame) -> pd.Series:
    """16 hex digits per row from every value (missing ones included); stable across runs."""
    hashes = pd.util.hash_pandas_object(frame, index=False) if len(frame.columns) else pd.Series(0, index=frame.index)
    # astype(object): an empty frame's hashes stay text, not uint64 (which "+ '-'" cannot join).
    return hashes.map(lambda value: f"{value:016x}").astype(object)
