"""StageTask: a stage whose output is a folder `<data_root>/<NN_stage>/<version>/`, written atomically.

The version hashes the task's significant parameters, its inputs' versions, the source of every
file its code uses (tasks/base/versions.py) and whatever else it declares in identity(). Change
any of them and the stage reruns into a new folder; change nothing and the folder exists, so
nothing runs. version.json in the folder keeps what the version was made of, for `overnight plan`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import ClassVar

import luigi

from pipeline.artifacts.folder import StageFolder, write_json
from pipeline.common.faults import pause_point
from pipeline.layout import VERSION_FILE
from tasks.base.outputs import remove_abandoned_attempts, sync_directory, sync_tree
from tasks.base.recorded import Outcome, RecordedTask
from tasks.base.versions import stage_code
from tasks.config import layout

VERSION_LENGTH = 16


class StageTask(RecordedTask):
    stage: ClassVar[str]  # e.g. "training": its folder under the data root (pipeline/layout.py)
    artifact: ClassVar[type[StageFolder]]  # reads and writes the output folder; FILES is the postcondition

    def requires(self) -> dict[str, luigi.Task]:
        """The upstream stages by name; their outputs come back from inputs() as artifacts."""
        return {}

    def build(self, out: StageFolder) -> Outcome:
        """Read the inputs, call the stage's pipeline function, write through `out`."""
        raise NotImplementedError

    def identity(self) -> dict:
        """Everything the output depends on besides parameters, upstream versions and code."""
        return {}

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
        remove_abandoned_attempts(Path(self.output().path), layout().locks(), owner=self.task_family)

    def execute(self) -> Outcome:
        final = Path(self.output().path)
        with self.output().temporary_path() as temporary:
            out_dir = Path(temporary)
            out_dir.mkdir(parents=True)
            try:
                outcome = self.build(self.artifact(out_dir))
                self._check_postcondition(out_dir)
                write_json(out_dir / VERSION_FILE, {"version": self.version, **self.made_of()})
                # Luigi renames without syncing: after a power cut the folder could be in place
                # with empty or missing files. Contents first, then the rename, then its folder.
                sync_tree(out_dir)
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
