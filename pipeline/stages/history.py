"""The per-epoch history CSV Keras writes while training (light: a model folder reads it back
without loading NumPy or Keras)."""

from __future__ import annotations

import csv
from pathlib import Path

HISTORY_FILE = "history.csv"


def read_history(path: Path) -> dict[str, list[float]]:
    """The per-epoch CSV written by Keras, as columns; a resumed run's repeated epochs keep the last."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    # A kill can leave a last row half written: keep complete rows only.
    by_epoch = {int(row["epoch"]): row for row in rows if None not in row.values() and "" not in row.values()}
    ordered = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    if not ordered:
        return {}
    return {name: [float(row[name]) for row in ordered] for name in ordered[0]}
