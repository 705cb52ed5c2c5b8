"""Workers of several hosts on one central scheduler: they stay for the work, and exit with the truth.

Two things Luigi does not do on its own, seen with two hosts running the same command:

- A worker leaves as soon as nothing is runnable for it at this moment: the second host found
  IngestData running on the first and quit, so every parallel trial went to one host. A worker
  that joins a central scheduler keeps asking (`[worker] keep_alive`) until the graph has no
  pending task, for at most `max_keep_alive_idle_duration` idle (so a task that failed elsewhere,
  which luigid offers again after `retry_delay`, does not keep every host's cron job waiting).
- Its summary counts only what it ran itself: a task another worker ran stays "pending" in its
  history, so the worker whose share was done by the other host exited 25 or 10 although the
  graph was complete. Before Luigi reads the summary (for the text and for the exit code), tasks
  another worker is still running are waited for, and those now complete count as already done.
  A task that failed elsewhere stays incomplete: the exit code is non-zero on every host.
"""

from __future__ import annotations

import logging
import time

import luigi
import luigi.execution_summary as execution_summary

logger = logging.getLogger(__name__)

KEEP_ALIVE_IDLE = "10 minutes"  # [worker] max_keep_alive_idle_duration unless configured
POLL_S = 2.0
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
    _wait_for_other_workers(worker)
    tasks = _luigi_summary(worker)
    done_elsewhere = {task for name in UNFINISHED for task in tasks[name] if _complete(task)}
    if done_elsewhere:
        for name in UNFINISHED:
            tasks[name] -= done_elsewhere
        tasks["already_done"] |= done_elsewhere
    return tasks


def _wait_for_other_workers(worker) -> None:
    """Until no task of this worker's graph is running on another worker (nothing to wait for
    with a local scheduler: no other worker shares it)."""
    waiting = {task.task_id: task for task in execution_summary._get_run_by_other_worker(worker)}
    told = False
    while waiting:
        running = worker._scheduler.task_list("RUNNING", "")
        waiting = {task_id: task for task_id, task in waiting.items() if task_id in running and not _complete(task)}
        if waiting and not told:
            logger.info("waiting for %d task(s) another worker is running: %s", len(waiting), ", ".join(waiting))
            told = True
        if waiting:
            time.sleep(POLL_S)


def _complete(task: luigi.Task) -> bool:
    try:
        return bool(task.complete())
    except Exception:  # noqa: BLE001 - a complete() that fails is not complete; Luigi said why already
        return False
