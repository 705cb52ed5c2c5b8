"""StageTask: a stage whose output is a folder `<data_root>/<NN_stage>/<version>/`, written atomically.

The version hashes the task's significant parameters, its inputs' versions, the source of every
file its code uses (tasks/base/versions.py) and whatever else it declares in identity(). Change
any of them and the stage reruns into a new folder; change nothing and the folder exists, so
nothing runs. version.json in the folder keeps what the version was made of, for `overnight plan`,
and integrity.json each file's size and hash: a folder whose sizes no longer match is not done,
and is moved aside and rebuilt.

A stage whose product includes database rows (`rows = True`: the raw data's `datasets` row, a
registration, a night's drift figures, late labels) is complete only where its marker is: in the
configured database. Its folder may have been made while another database was configured; then
only its rows are written, from the folder's files (load_rows).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import ClassVar

import luigi

from pipeline.artifacts.folder import StageFolder, write_json
from pipeline.common.faults import pause_point
from pipeline.common.files import sync_directory, sync_tree
from pipeline.layout import VERSION_FILE
from pipeline.store.markers import Marker
from tasks import recording
from tasks.base.outputs import remove_abandoned_attempts
from tasks.base.recorded import Outcome, RecordedTask
from tasks.base.versions import stage_code
from tasks.config import layout, overnight

logger = logging.getLogger(__name__)

VERSION_LENGTH = 16


class StageTask(RecordedTask):
    stage: ClassVar[str]  # e.g. "training": its folder under the data root (pipeline/layout.py)
    artifact: ClassVar[type[StageFolder]]  # reads and writes the output folder; FILES is the postcondition
    rows: ClassVar[bool] = False  # the product includes database rows: complete only where they are

    def requires(self) -> dict[str, luigi.Task]:
        """The upstream stages by name; their outputs come back from inputs() as artifacts."""
        return {}

    def build(self, out: StageFolder) -> Outcome:
        """Read the inputs, call the stage's pipeline function, write through `out`."""
        raise NotImplementedError

    def load_rows(self, out: StageFolder, engine, marker: Marker) -> Outcome:
        """Write the output's rows from its finished folder, with `marker`, in one transaction."""
        raise NotImplementedError

    def identity(self) -> dict:
        """Everything the output depends on besides parameters, upstream versions and code."""
        return {}

    def complete(self) -> bool:
        final = Path(self.output().path)
        if not final.is_dir() or self.artifact(final).damage() is not None:
            return False  # a damaged folder is moved aside by run(), under the output's lock
        return not self.rows or recording.is_marked(self.task_family, self.version)

    def inputs(self) -> dict[str, StageFolder]:
        """The upstream outputs by name, each read through its own artifact class."""
        return {name: task.artifact(Path(task.output().path)) for name, task in self.requires().items()}

    def upstream(self, name: str) -> luigi.Task:
        """The upstream task of that name (for its version or parameters)."""
        upstream = self.requires()
        return upstream[name]

    def made_of(self) -> dict:
        """Everything the version hashes; saved as version.json so `overnight plan` can say what changed."""
        if not hasattr(self, "_made_of"):
            self._made_of = {
                "task": self.task_family,
                "params": self.to_str_params(only_significant=True),
                "upstream": {task.task_family: task.version for task in self.requires().values()},
                "code": stage_code(type(self), cache=layout().code_cache()),
                **self.identity(),
            }
        return self._made_of

    @property
    def version(self) -> str:
        if not hasattr(self, "_version"):
            text = json.dumps(self.made_of(), sort_keys=True, default=str)
            self._version = hashlib.sha256(text.encode()).hexdigest()[:VERSION_LENGTH]
        return self._version

    def output(self):
        return luigi.LocalTarget(str(layout().output(self.stage, self.version)))

    def before_run(self) -> None:
        final = Path(self.output().path)
        locks, engine = layout().locks(), recording.engine()
        remove_abandoned_attempts(final, locks, engine, owner=self.task_family, private=overnight().private)
        damage = self.artifact(final).damage() if final.is_dir() else None
        if damage is not None:
            aside = self.artifact(final).move_aside()
            logger.warning("%s: %s; moved the output to %s and building it again", self.task_family, damage, aside)

    def execute(self) -> Outcome:
        final = Path(self.output().path)
        outcome = Outcome() if final.is_dir() else self._build(final)  # a folder made for another database
        if self.rows:
            marker = Marker(self.task_family, self.version, self.run_id)
            outcome = outcome.merged(self.load_rows(self.artifact(final), recording.engine(), marker))
        return outcome

    def _build(self, final: Path) -> Outcome:
        with self.output().temporary_path() as temporary:
            out_dir = Path(temporary)
            out_dir.mkdir(parents=True)
            try:
                outcome = self.build(self.artifact(out_dir))
                self._check_postcondition(out_dir)
                write_json(out_dir / VERSION_FILE, {"version": self.version, **self.made_of()})
                self.artifact(out_dir).seal()
                # Luigi renames without syncing: after a power cut the folder could be in place
                # with empty or missing files. Contents first, then the rename, then its folder.
                sync_tree(out_dir)
                if self.lease is not None:
                    self.lease.check()  # its session may have ended (a server restart): another may hold it
            except BaseException:
                shutil.rmtree(out_dir, ignore_errors=True)  # a failed attempt leaves nothing behind
                raise
            pause_point(f"stage:before-rename:{self.task_family}")
        sync_directory(final.parent)
        return outcome

    def _check_postcondition(self, out_dir: Path) -> None:
        missing = self.artifact(out_dir).missing()
        if missing:
            raise RuntimeError(f"{self.task_family} did not write {', '.join(missing)} in {out_dir}")
