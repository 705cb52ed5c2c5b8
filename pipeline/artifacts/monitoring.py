"""09_monitoring/<date>/: a night's drift figures, its late labels and its report."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.artifacts.folder import StageFolder, read_json, write_json

if TYPE_CHECKING:  # loaded by the functions that need it: `import tasks` stays light
    import pandas as pd

DRIFT = "drift.csv"  # feature, method, score, threshold, alert
STATS = "feature_stats.csv"  # feature, statistic, batch_value, reference_value
SUMMARY = "summary.json"  # the night's alert line and alert count
FEEDBACK = "feedback.csv"  # the late labels that were loaded
REJECTS = "rejects.csv"  # late-label rows without an id or a label


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

    def write(self, stats: pd.DataFrame, drift: pd.DataFrame, summary: dict) -> None:
        stats.to_csv(self.path / STATS, index=False)
        drift.to_csv(self.path / DRIFT, index=False)
        write_json(self.path / SUMMARY, summary)


def quiet_nights(
    monitoring: Path, *, before: datetime.date, model_version: str, count: int
) -> list[tuple[datetime.date, DriftFolder]]:
    """The last `count` nights before `before` whose drift by `model_version` raised no alert,
    newest first, each with its newest such drift folder (`[MonitorDrift] reference = rolling`).

    Only folders that say which scores they measured count (written since the rolling reference).
    Folders are renamed into place whole, so every one found is finished.
    """
    nights = []
    for date, night in sorted(_dated_folders(monitoring, before), reverse=True):
        folders = sorted(night.glob("drift-*"), key=lambda path: path.stat().st_mtime, reverse=True)
        for path in folders:
            summary = read_json(path / SUMMARY) if (path / SUMMARY).is_file() else {}
            if summary.get("model_version") == model_version and summary.get("alerts") == 0 and summary.get("scores"):
                nights.append((date, DriftFolder(path)))
                break
        if len(nights) == count:
            break
    return nights


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
    temporary.write_text(html, encoding="utf-8")
    os.replace(temporary, path)
    return path
