"""Opt-in pause points for the crash tests; in normal use every call returns at once.

The crash harness (tests/reliability/test_crash.py) kills runs at the moments that matter most:
in the middle of a database load, between writing a stage's output and renaming it into place.
Those moments last milliseconds, so a test asks for a pause there:

    OVERNIGHT_TEST_PAUSE_AT=prediction-log:mid-load luigi --module tasks Nightly --date 2026-11-05

A point is named by colon-separated parts (``stage:before-rename:TrainModel``); the variable
names one or more points, comma-separated, and a name matches a point or any point under it
(``stage:before-rename`` pauses every stage there). On reaching a named point the process writes
one line to stderr (``PAUSE_ANNOUNCEMENT`` and the point) and sleeps
``OVERNIGHT_TEST_PAUSE_SECONDS`` (default 60) seconds, long enough to be killed.
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_VARIABLE = "OVERNIGHT_TEST_PAUSE_AT"
SECONDS_VARIABLE = "OVERNIGHT_TEST_PAUSE_SECONDS"
PAUSE_ANNOUNCEMENT = "overnight-test-pause:"


def pause_point(label: str) -> None:
    """Sleep here if OVERNIGHT_TEST_PAUSE_AT names this point; otherwise do nothing."""
    wanted = os.environ.get(PAUSE_VARIABLE)
    if not wanted or not any(_matches(label, name.strip()) for name in wanted.split(",")):
        return
    seconds = float(os.environ.get(SECONDS_VARIABLE, "60"))
    print(f"{PAUSE_ANNOUNCEMENT} {label} pid={os.getpid()}", file=sys.stderr, flush=True)
    time.sleep(seconds)


def _matches(label: str, name: str) -> bool:
    return bool(name) and (label == name or label.startswith(name + ":"))
