"""09_monitoring/<date>/: a night's drift figures, its late labels and its report."""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.artifacts.folder import StageFolder, read_json, write_json
from pipeline.common.columns import DRIFT_NOTE

if TYPE_CHECKING:  # loaded by the functions that need it: `import tasks` stays light
    import pandas as pd

DRIFT = "drift.csv"  # feature, method, score, threshold, alert
STATS = "feature_stats.csv"  # feature, statistic, batch_value, reference_value
# The night's alert line and alert count, and "notes": [{feature, method, note}] for each drift
# row that did not run (why) or whose score needs words (a class_share row's counts).
SUMMARY = "summary.json"
NOTES = "notes"
FEEDBACK = "feedback.csv"  # the late labels that were loaded
REJECTS = "rejects.csv"  # late-label rows without an id or a label
FINISHED_DRIFT = re.compile(r"drift-[0-9a-f]{16}")  # a version in place: not Luigi's scratch, not moved aside


class DriftFolder(StageFolder):
    FILES = (DRIFT, STATS, SUMMARY)

    def drift(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(self.file(DRIFT), dtype={"feature": str, "method": str})

    def stats(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(self.file(STATS), dtype={"feature": str, "statistic": str})

    def summary(self) -> dict:
        return read_json(self.file(SUMMARY))

    def notes(self) -> list[dict]:
        """[{feature, method, note}] of the rows that did not run or carry words; [] for a folder
        written before notes were kept (its NaN scores then have no reason on record)."""
        return self.summary().get(NOTES, [])

    def write(self, stats: pd.DataFrame, drift: pd.DataFrame, summary: dict) -> None:
        """drift.csv keeps the `drift` table's columns; a frame's notes (pipeline.common.columns
        DRIFT_NOTE) go to summary.json, beside the alert line that quotes them."""
        stats.to_csv(self.path / STATS, index=False)
        notes = []
        if DRIFT_NOTE in drift.columns:
            noted = drift[drift[DRIFT_NOTE].notna()]
            notes = [
                {"feature": str(f), "method": str(m), "note": str(n)}
                for f, m, n in zip(noted["feature"], noted["method"], noted[DRIFT_NOTE])
            ]
            drift = drift.drop(columns=DRIFT_NOTE)
        drift.to_csv(self.path / DRIFT, index=False)
        write_json(self.path / SUMMARY, {**summary, NOTES: notes})


def quiet_nights(
    monitoring: Path, *, before: datetime.date, model_version: str, count: int, min_rows: int
) -> list[tuple[datetime.date, DriftFolder]]:
    """The last `count` nights before `before` that `model_version` scored with at least
    `min_rows` rows and whose drift raised no alert, newest first (`[MonitorDrift] reference =
    rolling`).

    A night's drift is its newest finished folder for that model: a night that alerted there is
    not quiet, whatever an older run of it said. Only folders that name the scores they measured
    count (written since the rolling reference); scratch and folders moved aside never do.
    """
    if count < 1:
        raise ValueError(f"[MonitorDrift] rolling_nights must be at least 1, not {count}")
    nights = []
    for date, night in sorted(_dated_folders(monitoring, before), reverse=True):
        latest = _latest_drift(night, model_version)
        summary = latest.summary() if latest is not None else {}
        if summary.get("alerts") == 0 and summary.get("scores_version") and summary.get("rows", 0) >= min_rows:
            nights.append((date, latest))
        if len(nights) == count:
            break
    return nights


def _latest_drift(night: Path, model_version: str) -> DriftFolder | None:
    found = []
    for path in night.iterdir():
        if not (FINISHED_DRIFT.fullmatch(path.name) and (path / SUMMARY).is_file()):
            continue
        folder = DriftFolder(path)
        if folder.damage() is None and read_json(path / SUMMARY).get("model_version") == model_version:
            found.append((path.stat().st_mtime_ns, path.name, folder))
    return max(found, key=lambda item: item[:2])[2] if found else None


def _dated_folders(monitoring: Path, before: datetime.date) -> list[tuple[datetime.date, Path]]:
    found = []
    for path in monitoring.iterdir() if monitoring.is_dir() else []:
        try:
            date = datetime.date.fromisoformat(path.name)
        except ValueError:
            continue  # a report, scratch
        if date < before:
            found.append((date, path))
    return found


class FeedbackFolder(StageFolder):
    FILES = (FEEDBACK, REJECTS)

    def labels(self) -> pd.DataFrame:
        """The loaded labels as they were read: every value text, an empty one empty, not missing."""
        import pandas as pd

        return pd.read_csv(self.file(FEEDBACK), dtype=str, keep_default_na=False)

    def write(self, loaded: pd.DataFrame, rejected: pd.DataFrame) -> None:
        loaded.to_csv(self.path / FEEDBACK, index=False)
        rejected.to_csv(self.path / REJECTS, index=False)


def write_night_report(path: Path, html: str) -> Path:
    """Written beside and renamed: a reader never opens half a report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(html, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # a full disk must not leave half a report beside it
    return path
