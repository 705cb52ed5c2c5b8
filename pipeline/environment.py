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
from pathlib import Path

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
    """Platform, Python, CPU count, memory (GiB) and GPUs of this machine.

    Returns:
        ``{"platform", "python", "cpu_count", "memory_gb", "gpus"}``; ``gpus`` lists one
        ``"name (memory)"`` string per GPU nvidia-smi reports, ``[]`` without nvidia-smi.
    """
    return copy.deepcopy(_hardware())  # a copy: callers must not edit the cached facts


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
