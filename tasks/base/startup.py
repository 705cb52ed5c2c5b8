"""What a command does before Luigi schedules its first task of ours.

`import tasks` only defines classes. Four things must still happen before Luigi acts on a task:
the one-line error filter must be on Luigi's logger before it logs a failure (scheduling errors
are logged before any task runs); the GPU count must be in `[resources]` before Luigi creates
its scheduler, which reads it once; a worker of a central scheduler must be set to stay for the
work and to count what other workers ran (tasks/base/cluster.py) before Luigi creates the worker
and reads its summary; and an existing database is brought up to this code's schema
and the runs that a killed process left `running` are settled, so that a command finding
everything complete still reads and reports the truth. The last moment both the
`luigi` command and `luigi.build()` pass through before scheduling is the creation of the first
task instance (the command line parses its task before it builds the scheduler), so
PreparedTask.__init__ (the mixin of every task class of ours) calls prepare_process().
"""

from __future__ import annotations

import json
import os

import luigi

from tasks import errors, recording
from tasks.base import cluster
from tasks.base.identity import scheduled_id
from tasks.base.resources import offer_detected_gpus
from tasks.config import require_config_file

OUTCOME_VARIABLE = "OVERNIGHT_OUTCOME_FILE"  # where each failed task's one line goes (`overnight nightly`)

_prepared = False


class PreparedTask:
    """Mixin for every task class of ours (Luigi's RangeDaily included, tasks/backfill.py): the
    process is prepared before Luigi acts on the first one, and the task id names the data set
    (tasks/base/identity.py), so that two data sets' tasks are apart on one scheduler."""

    def __init__(self, *args, **kwargs):
        prepare_process()  # before Luigi schedules or logs anything about a task of ours
        super().__init__(*args, **kwargs)
        self.task_id = scheduled_id(self)


def prepare_process() -> None:
    global _prepared  # once per process, whatever creates the first task
    if not _prepared:
        _prepared = True
        errors.install()
        require_config_file()  # before anything reads a setting
        offer_detected_gpus()
        _honour_scheduler_options()
        cluster.install_truthful_summary()
        luigi.Task.event_handler(luigi.Event.FAILURE)(record_failure)
    recording.settle_stale_runs()  # once per database: a test or a tool may switch databases


def _honour_scheduler_options() -> None:
    """`--scheduler-host`, `--scheduler-port` or `--scheduler-url` on the command line mean luigid.

    luigi.cfg sets `[core] local_scheduler = true` so that the plain command works without
    luigid, and Luigi then ignores the scheduler options without a word: a person who names a
    scheduler gets a local one. Luigi reads `local_scheduler` when it builds its scheduler, after
    the command line's task is created: here is the last moment to say what the person asked for.
    """
    from luigi.cmdline_parser import CmdlineParser

    parser = CmdlineParser.get_instance()
    known = getattr(parser, "known_args", None)
    arguments = vars(known) if known is not None else {}
    asked = any(arguments.get(f"core_scheduler_{name}") is not None for name in ("host", "port", "url"))
    config = luigi.configuration.get_config()
    if asked and not arguments.get("core_local_scheduler"):
        config.set("core", "local_scheduler", "false")
    central = not arguments.get("core_local_scheduler") and not config.getboolean("core", "local_scheduler", False)
    if central:
        cluster.join_central_scheduler(config)


def record_failure(task: luigi.Task, exception: BaseException) -> None:
    """A failed task's one line and exit code, for the command that ran Luigi to report.

    Luigi calls this in the process that ran the task (a forked worker too); the file named by
    OVERNIGHT_OUTCOME_FILE collects one JSON line per failure. Nothing is written without it.
    """
    path = os.environ.get(OUTCOME_VARIABLE)
    if not path:
        return
    message = " ".join(str(exception).split()) or type(exception).__name__
    # A person's error (bad data, a drifted night) reads as its message; anything else keeps its type.
    error = message if isinstance(exception, errors.EXPECTED_ERRORS) else f"{type(exception).__name__}: {message}"
    line = {"task": task.task_family, "error": error, "exit_code": errors.exit_code(exception)}
    with open(path, "a") as handle:
        handle.write(json.dumps(line) + "\n")
