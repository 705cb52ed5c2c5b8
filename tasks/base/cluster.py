"""Workers of several hosts on one central scheduler: they stay for the work, and exit with the truth.

Two things Luigi does not do on its own, seen with two hosts running the same command:

- A worker leaves as soon as nothing is runnable for it at this moment: the second host found
  IngestData running on the first and quit, so every parallel trial went to one host. A worker
  that joins a central scheduler keeps asking (`[worker] keep_alive`) until the graph has no
  pending task, for at most `max_keep_alive_idle_duration` idle (so a task that failed elsewhere,
  which luigid offers again after `retry_delay`, does not keep every host's cron job waiting).
- Its summary counts only what it ran itself: a task another worker ran stays "pending" in its
  history, so the worker whose share was done by the other host exited 25 or 10 although the
  graph was complete. Before Luigi reads the summary (for the text and for the exit code), the
  worker of a central scheduler waits while luigid says a task of its graph is running, and the
  tasks now complete count as already done, those luigid holds as failed as failed: the exit
  code is task_failed on every host. (A dead worker's task is taken over by the workers still
  asking for work: those with tasks pending after it. When it was the graph's last task, the
  others have stopped asking; the next run of the command finishes it.)
"""

from __future__ import annotations

import logging
import time

import luigi
import luigi.execution_summary as execution_summary
from luigi.rpc import RemoteScheduler

logger = logging.getLogger(__name__)

KEEP_ALIVE_IDLE = "10 minutes"  # [worker] max_keep_alive_idle_duration unless configured
POLL_S = 2.0
QUIET_POLLS = 3  # polls in a row with nothing of the graph running before the wait ends
UNFINISHED = ("still_pending_not_ext", "run_by_other_worker", "upstream_run_by_other_worker", "not_run")

_luigi_summary = execution_summary._summary_dict


def join_central_scheduler(config) -> None:
    """A worker of a central scheduler stays while the graph has pending tasks (unless configured)."""
    if not config.has_section("worker"):
        config.add_section("worker")
    if not config.has_option("worker", "keep_alive"):
        config.set("worker", "keep_alive", "true")
    if not config.has_option("worker", "max_keep_alive_idle_duration"):
        config.set("worker", "max_keep_alive_idle_duration", KEEP_ALIVE_IDLE)


def install_truthful_summary() -> None:
    execution_summary._summary_dict = _summary_counting_other_workers


def _summary_counting_other_workers(worker) -> dict:
    # Luigi asks twice (the summary's text, then the exit code): one wait, one answer.
    if getattr(worker, "_overnight_summary", None) is None:
        worker._overnight_summary = _counted(worker)
    return {name: set(tasks) for name, tasks in worker._overnight_summary.items()}


def _counted(worker) -> dict:
    tasks = _luigi_summary(worker)
    central = isinstance(worker._scheduler, RemoteScheduler)  # a local one has no other workers
    if central and any(tasks[name] for name in UNFINISHED):
        _wait_for_other_workers(worker)
        tasks = _luigi_summary(worker)
    done_elsewhere = {task for name in UNFINISHED for task in tasks[name] if _complete(task)}
    _move(tasks, done_elsewhere, "already_done")
    if central:
        failed = _failed_ids(worker)
        _move(tasks, {task for name in UNFINISHED for task in tasks[name] if task.task_id in failed}, "failed")
    return tasks


def _move(tasks: dict, found: set, status: str) -> None:
    for name in UNFINISHED:
        tasks[name] -= found
    tasks[status] |= found


def _failed_ids(worker) -> set[str]:
    """The tasks luigid holds as failed or disabled: failed on another worker, they are this
    graph's failure too (exit code task_failed, not already_running)."""
    try:
        return {task_id for status in ("FAILED", "DISABLED") for task_id in worker._scheduler.task_list(status, "")}
    except Exception as error:  # noqa: BLE001 - luigid gone: the summary says what this worker knows
        logger.warning("could not ask the scheduler which tasks failed: %s", error)
        return set()


def _wait_for_other_workers(worker) -> None:
    """While luigid says a task of this worker's graph is running (on another worker: this one
    has stopped), and a little longer, for the next one another worker starts after it."""
    ours = set(worker._scheduled_tasks)
    quiet, told = 0, False
    while quiet < QUIET_POLLS:
        try:
            running = ours & set(worker._scheduler.task_list("RUNNING", ""))
        except Exception as error:  # noqa: BLE001 - luigid gone: the summary says what this worker knows
            logger.warning("could not ask the scheduler what other workers run: %s", error)
            return
        quiet = 0 if running else quiet + 1
        if running and not told:
            logger.info("waiting for %d task(s) other workers are running: %s", len(running), ", ".join(running))
            told = True
        if quiet < QUIET_POLLS:
            time.sleep(POLL_S)


def _complete(task: luigi.Task) -> bool:
    try:
        return bool(task.complete())
    except Exception:  # noqa: BLE001 - a complete() that fails is not complete; Luigi said why already
        return False
