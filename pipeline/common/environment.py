"""Facts about where a run happens: code revision, machine, package versions.

Everything here is cheap and side-effect free, and never imports TensorFlow (package versions
come from installed metadata), so recording a run costs milliseconds. A fact that cannot be
found is None or left out rather than an error: a run must not fail because git is missing.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.common import cards

try:
    import resource
except ImportError:  # not a POSIX system: CPU seconds and peak memory are not measured
    resource = None

logger = logging.getLogger(__name__)

GIT_TIMEOUT_S = 5
NVIDIA_SMI_TIMEOUT_S = 10

# Distribution names (as pip knows them) whose versions matter to reproduce a run.
TRACKED_PACKAGES = (
    "tensorflow",
    "keras",
    "luigi",
    "pandas",
    "numpy",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "sqlalchemy",
    "alembic",
    "psycopg2-binary",
)


def git_commit(repo_dir: str | Path) -> str | None:
    """The commit checked out in ``repo_dir``; None outside a repository, before the first
    commit, or when git is missing."""
    output = _git(repo_dir, "rev-parse", "--verify", "HEAD")
    if output is None:
        return None
    return output.strip() or None


def git_dirty(repo_dir: str | Path) -> bool | None:
    """Whether tracked files differ from the commit; None when it cannot be told.

    Untracked files do not count (as with ``git describe --dirty``): a scratch notebook next
    to the code should not mark every run dirty.
    """
    output = _git(repo_dir, "status", "--porcelain", "--untracked-files=no")
    return bool(output.strip()) if output is not None else None


def _git(repo_dir: str | Path, *args: str) -> str | None:
    """stdout of a git command in ``repo_dir``, or None when it fails for any reason."""
    # No optional locks: `git status` must not take index.lock while a person runs git.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        result = subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("git %s in %s failed: %s", args[0], repo_dir, exc)
        return None
    if result.returncode != 0:
        logger.debug("git %s in %s: %s", args[0], repo_dir, result.stderr.strip())
        return None
    return result.stdout


def hardware() -> dict:
    """Platform, Python, CPU count, memory (GiB) and GPUs of this machine, and the cards this
    process may use.

    Returns:
        ``{"platform", "python", "cpu_count", "memory_gb", "gpus", "cards"}``; ``gpus`` lists one
        ``"name (memory)"`` string per GPU nvidia-smi reports, ``[]`` without nvidia-smi;
        ``cards`` the indices CUDA_VISIBLE_DEVICES leaves it (a GPU task's own, pinned per task).
    """
    facts = copy.deepcopy(_hardware())  # a copy: callers must not edit the cached facts
    facts["cards"] = cards.host_cards(len(facts["gpus"]))
    return facts


def gpu_name() -> str | None:
    """The name of the first GPU this process may use (``"NVIDIA H100 80GB HBM3"``), or None.

    None without a GPU, and when ``CUDA_VISIBLE_DEVICES`` hides every GPU ("" or "-1"):
    nvidia-smi still lists the cards then, but TensorFlow will not use them.
    """
    if not usable_gpu_count():
        return None
    gpus = _hardware()["gpus"]
    name, _, _ = gpus[0].rpartition(" (")  # drop the "(81559 MiB)" that hardware() appends
    return name or gpus[0]


def usable_gpu_count() -> int:
    """How many GPUs this process may use: those nvidia-smi lists, narrowed by CUDA_VISIBLE_DEVICES.

    Asks nvidia-smi, never CUDA: a process that initialised CUDA cannot fork working children.
    """
    return len(cards.host_cards(len(_hardware()["gpus"])))


@dataclass(frozen=True)
class Usage:
    """What a piece of work used; None where this platform cannot tell."""

    wall_s: float
    cpu_s: float | None  # user + system, this process and its waited-for children
    peak_memory_mb: float | None  # peak resident memory of this process since it started


class UsageMeter:
    """Measures wall and CPU seconds from its creation to :meth:`stop`.

    CPU seconds are deltas of ``getrusage`` for this process plus its children (the children
    count once they have exited and been waited for, as subprocess.run does). Peak memory is
    not a delta: the kernel keeps only the process's high-water mark, so a task that runs
    after a bigger one in the same process reports the bigger one's peak.
    """

    def __init__(self) -> None:
        self._wall_start = time.monotonic()
        self._cpu_start = _cpu_seconds()

    def stop(self) -> Usage:
        wall_s = time.monotonic() - self._wall_start
        cpu_now = _cpu_seconds()
        cpu_s = None if cpu_now is None or self._cpu_start is None else max(cpu_now - self._cpu_start, 0.0)
        return Usage(wall_s=wall_s, cpu_s=cpu_s, peak_memory_mb=_peak_memory_mb())


def _cpu_seconds() -> float | None:
    if resource is None:
        return None
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _peak_memory_mb() -> float | None:
    if resource is None:
        return None
    # ru_maxrss of RUSAGE_SELF: the process's peak resident set so far (not this task's own
    # peak). Linux reports KiB, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def packages() -> dict[str, str]:
    """Installed versions of the packages that shape a run; missing ones are left out."""
    return dict(_packages())


@functools.lru_cache(maxsize=1)
def _hardware() -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "gpus": _gpus(),
    }


def _memory_gb() -> float | None:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system, or not exposed
        return None
    return round(total / 1024**3, 1)


def _gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("nvidia-smi failed: %s", exc)
        return []
    if result.returncode != 0:  # e.g. driver not loaded
        logger.debug("nvidia-smi: %s", result.stderr.strip())
        return []
    return [_gpu_label(line) for line in result.stdout.splitlines() if line.strip()]


def _gpu_label(line: str) -> str:
    """``"NVIDIA H100 80GB HBM3, 81559 MiB"`` -> ``"NVIDIA H100 80GB HBM3 (81559 MiB)"``."""
    name, _, memory = line.rpartition(",")
    if not name:
        return line.strip()
    return f"{name.strip()} ({memory.strip()})"


@functools.lru_cache(maxsize=1)
def _packages() -> tuple[tuple[str, str], ...]:
    versions = []
    for name in TRACKED_PACKAGES:
        try:
            versions.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return tuple(versions)
