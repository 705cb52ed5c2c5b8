"""pipeline.common.environment: git state, hardware and package facts of a run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.common import environment

REPO_ROOT = Path(__file__).resolve().parents[2]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    command = [
        "git",
        "-C",
        str(repo),
        # Independent of whoever runs the tests: no identity or signing from their config.
        "-c",
        "user.name=Test",
        "-c",
        "user.email=test@example.com",
        "-c",
        "commit.gpgsign=false",
        *args,
    ]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Stop git from finding a repository above tmp_path.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("print('hello')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


@needs_git
def test_git_commit_is_the_checked_out_commit(git_repo):
    commit = environment.git_commit(git_repo)

    assert commit == _git(git_repo, "rev-parse", "HEAD").strip()
    assert len(commit) == 40 and int(commit, 16) >= 0


@needs_git
def test_git_dirty_after_modifying_a_tracked_file(git_repo):
    assert environment.git_dirty(git_repo) is False

    (git_repo / "notes.txt").write_text("untracked files do not count\n")
    assert environment.git_dirty(git_repo) is False

    (git_repo / "train.py").write_text("print('changed')\n")
    assert environment.git_dirty(git_repo) is True


@needs_git
def test_outside_a_repository_gives_none(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()

    assert environment.git_commit(plain) is None
    assert environment.git_dirty(plain) is None
    assert environment.git_commit(tmp_path / "missing") is None


@needs_git
def test_repository_without_commits_has_no_commit(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    _git(tmp_path, "init", "-q")

    assert environment.git_commit(tmp_path) is None


def test_missing_git_gives_none(git_repo, monkeypatch):
    monkeypatch.setenv("PATH", "")

    assert environment.git_commit(git_repo) is None
    assert environment.git_dirty(git_repo) is None


def test_hardware_describes_this_machine():
    facts = environment.hardware()

    assert set(facts) == {"platform", "python", "cpu_count", "memory_gb", "gpus", "cards"}
    assert facts["python"] == ".".join(map(str, sys.version_info[:3]))
    assert facts["cpu_count"] == os.cpu_count()
    assert facts["memory_gb"] is None or facts["memory_gb"] > 0
    assert isinstance(facts["gpus"], list)


def test_hardware_is_cached_but_returned_as_a_copy():
    first = environment.hardware()
    first["gpus"].append("edited")

    assert "edited" not in environment.hardware()["gpus"]
    assert environment._hardware.cache_info().hits >= 1


def test_gpus_come_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 81559 MiB'\necho 'NVIDIA H100 80GB HBM3, 81559 MiB'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    environment._hardware.cache_clear()
    try:
        gpus = environment.hardware()["gpus"]
    finally:
        environment._hardware.cache_clear()

    assert gpus == ["NVIDIA H100 80GB HBM3 (81559 MiB)"] * 2


def test_no_nvidia_smi_means_no_gpus(monkeypatch):
    monkeypatch.setenv("PATH", "")
    environment._hardware.cache_clear()
    try:
        assert environment.hardware()["gpus"] == []
    finally:
        environment._hardware.cache_clear()


def test_packages_lists_installed_versions_and_skips_missing(monkeypatch):
    import sqlalchemy

    monkeypatch.setattr(environment, "TRACKED_PACKAGES", ("sqlalchemy", "no-such-package-overnight"))
    environment._packages.cache_clear()
    try:
        versions = environment.packages()
    finally:
        environment._packages.cache_clear()

    assert versions == {"sqlalchemy": sqlalchemy.__version__}


def test_environment_never_imports_tensorflow():
    code = (
        "import sys; from pipeline.common import environment; "
        "environment.hardware(); environment.packages(); "
        "assert 'tensorflow' not in sys.modules and 'luigi' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
