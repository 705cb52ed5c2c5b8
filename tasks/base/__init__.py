"""The framework every task stands on, in small pieces:

- recorded.py: RecordedTask, a run in the ledger (status, metrics, row counts, cost), made under
  its output's lock.
- stage.py: StageTask, a versioned output folder written atomically, read through artifacts.
- versions.py: the code a stage's version hashes, from the import statements.
- outputs.py: output locks, fsync before the rename, removal of what killed runs left.
- resources.py: GPUs as the Luigi resource `gpu`.
- startup.py: what a process does once before Luigi schedules its first task.
- night.py: the parameters the tasks of a night share (`date`, `model_version`), declared once.
"""

from tasks.base.recorded import Outcome, RecordedTask
from tasks.base.resources import ALL_CARDS, ONE_CARD
from tasks.base.stage import StageTask

__all__ = ["ALL_CARDS", "ONE_CARD", "Outcome", "RecordedTask", "StageTask"]
