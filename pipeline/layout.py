"""Where everything lives under the data root: one place for every folder the pipeline uses.

    <data_root>/
        raw/ incoming/<date>/ feedback/<date>/        what people put in
        01_raw/<version>/ ... 07_registry/<version>/  stage outputs, one folder per version
        05_training/.work/<version>/                  checkpoints a killed training resumes from
        05_training/trials/  05_training/tuning/      tuning trials and their summaries
        serving/journal/  serving/images/<date>/      online answers on their way to SQL; their images
        08_prediction/<date>/<version>/               a night's scores
        09_monitoring/<date>/                         a night's drift, late labels and report
        .cache/  .locks/                              content and code hashes; one lock per output

Tasks, the command line and `overnight reproduce` ask this module, so a folder's name is
written once.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

STAGE_FOLDERS = {
    "raw": "01_raw",
    "validation": "02_validation",
    "split": "03_split",
    "features": "04_features",
    "training": "05_training",
    "evaluation": "06_evaluation",
    "registry": "07_registry",
    "prediction": "08_prediction",
    "monitoring": "09_monitoring",
}
VERSION_FILE = "version.json"  # in every versioned output: what its version was made of
# In the names of Luigi's temporary outputs (target.temporary_path, atomic files).
TEMPORARY_MARK = "-luigi-tmp-"
# In the names of damaged outputs moved aside (pipeline/artifacts/folder.py), kept for a person.
DAMAGED_MARK = ".damaged-"


@dataclass(frozen=True)
class Layout:
    root: Path

    def stage(self, stage: str) -> Path:
        """The folder of one stage's versions, e.g. <root>/05_training."""
        if stage not in STAGE_FOLDERS:
            raise ValueError(f"unknown stage {stage!r}; the stages are {', '.join(STAGE_FOLDERS)}")
        return self.root / STAGE_FOLDERS[stage]

    def output(self, stage: str, version: str) -> Path:
        return self.stage(stage) / version

    # -- what people put in --------------------------------------------------------------------

    def incoming(self, date: datetime.date) -> Path:
        """A night's files to score."""
        return self.root / "incoming" / date.isoformat()

    def incoming_root(self) -> Path:
        return self.root / "incoming"

    def feedback(self, date: datetime.date) -> Path:
        """Labels that arrived late, dropped in on that date."""
        return self.root / "feedback" / date.isoformat()

    def journal(self) -> Path:
        """`overnight serve`'s answers on disk until they are in SQL (pipeline/serving/journal.py)."""
        return self.root / "serving" / "journal"

    def online_images(self) -> Path:
        """The images `overnight serve` answered, a folder per day (`<date>/...`), for that
        night's drift check: a request's bytes are not kept in SQL."""
        return self.root / "serving" / "images"

    # -- a night's outputs ---------------------------------------------------------------------

    def scores(self, date: datetime.date, version: str) -> Path:
        return self.stage("prediction") / date.isoformat() / version

    def night(self, date: datetime.date) -> Path:
        """The monitoring folder of one night: drift, late labels and its report."""
        return self.stage("monitoring") / date.isoformat()

    def drift(self, date: datetime.date, version: str) -> Path:
        return self.night(date) / f"drift-{version}"

    def feedback_output(self, date: datetime.date, version: str) -> Path:
        return self.night(date) / f"feedback-{version}"

    def night_report(self, date: datetime.date, model_version: str) -> Path:
        return self.night(date) / f"report-{model_version}.html"

    # -- training's side folders ---------------------------------------------------------------

    def training_work(self, version: str) -> Path:
        """Checkpoints and logs that must outlive a killed training: outside its temporary output."""
        return self.stage("training") / ".work" / version

    def trial(self, version: str) -> Path:
        return self.stage("training") / "trials" / f"{version}.json"

    def tuning(self, version: str) -> Path:
        return self.stage("training") / "tuning" / version

    # -- the pipeline's own bookkeeping --------------------------------------------------------

    def fingerprint_cache(self) -> Path:
        return self.root / ".cache" / "fingerprints.json"

    def code_cache(self) -> Path:
        """Which source files each stage's code is, while none of them changes (tasks/base/versions.py)."""
        return self.root / ".cache" / "code_versions.json"

    def locks(self) -> Path:
        return self.root / ".locks"
