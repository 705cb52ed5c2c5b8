"""What a command does before Luigi schedules its first task of ours.

`import tasks` only defines classes. Three things must still happen before Luigi acts on a task:
the one-line error filter must be on Luigi's logger before it logs a failure (scheduling errors
are logged before any task runs); the GPU count must be in `[resources]` before Luigi creates
its scheduler, which reads it once; and runs that a killed process left `running` are settled,
so that a command finding everything complete still reports the truth. The last moment both the
`luigi` command and `luigi.build()` pass through before scheduling is the creation of the first
task instance (the command line parses its task before it builds the scheduler), so
RecordedTask.__init__ calls prepare_process().
"""

from __future__ import annotations

from tasks import errors, recording
from tasks.base.resources import offer_detected_gpus

_prepared = False


def prepare_process() -> None:
    global _prepared  # once per process, whatever creates the first task
    if not _prepared:
        _prepared = True
        errors.install()
        offer_detected_gpus()
    recording.settle_stale_runs()  # once per database: a test or a tool may switch databases
