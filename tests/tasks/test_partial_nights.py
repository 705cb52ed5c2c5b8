"""A bad file does not sink a night, a missing night is not a quiet one, and two data sets share a date.

Run as cron runs them: scripts/nightly.sh under a bare environment, from the file system's root.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from luigi.execution_summary import LuigiStatusCode

from pipeline.store import database
from tasks import RegisterModel
from tests.tasks.support import build

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(REPO_ROOT / "scripts" / "nightly.sh")
NIGHT = "2031-06-01"
PARTIAL, MISSING = 31, 32  # docs/nightly.md, exit codes


def nightly(config: Path, url: str, night: str = NIGHT) -> subprocess.CompletedProcess:
    bare = {"PATH": "/usr/bin:/bin", "LUIGI_CONFIG_PATH": str(config), "OVERNIGHT_DATABASE_URL": url}
    return subprocess.run(
        ["env", "-i", *[f"{k}={v}" for k, v in bare.items()], SCRIPT, night],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
    )


def night_rows(url: str) -> dict:
    with database.connect(url).connect() as connection:
        batch = connection.execute(
            sa.text("SELECT rows_in, rows_rejected, rows_scored, status FROM batches WHERE batch_date = :d"),
            {"d": NIGHT},
        ).first()
        scored = connection.execute(sa.text("SELECT COUNT(*) FROM predictions WHERE batch_date = :d"), {"d": NIGHT})
        return {**batch._mapping, "logged": scored.scalar()}


@pytest.fixture
def tabular_model(configure, tabular_csv, tmp_path, database_url):
    config = configure(database_url=database_url, dataset={"path": str(tabular_csv), "label": "label"})
    assert build(RegisterModel()).status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
    unlabeled = pd.read_csv(tabular_csv).drop(columns=["label"])
    return config, database_url, unlabeled, tmp_path / "data" / "incoming" / NIGHT


def test_one_garbage_and_one_misspelled_file_are_quarantined_and_every_good_row_scored(tabular_model):
    config, url, rows, night = tabular_model
    night.mkdir(parents=True)
    rows.iloc[:60].to_csv(night / "good-1.csv", index=False)
    rows.iloc[60:100].to_csv(night / "good-2.csv", index=False)
    garbage = os.urandom(3000)
    (night / "garbage.csv").write_bytes(garbage)
    rows.iloc[100:130].rename(columns={"size": "sise"}).to_csv(night / "misspelled.csv", index=False)
    misspelled = (night / "misspelled.csv").read_bytes()

    partial = nightly(config, url)
    assert partial.returncode == PARTIAL, partial.stderr
    assert "FAILED (exit 31)" in partial.stderr and "2 file(s) quarantined" in partial.stderr
    counts = night_rows(url)
    assert (counts["rows_scored"], counts["logged"], counts["status"]) == (100, 100, "partial")
    assert counts["rows_rejected"] >= 30  # the misspelled file's rows; the garbage file's, as far as lines tell
    quarantine = next((night.parents[1] / "08_prediction" / NIGHT).glob("*/quarantine"))
    assert (quarantine / "garbage.csv").read_bytes() == garbage  # bytes intact
    assert (quarantine / "misspelled.csv").read_bytes() == misspelled
    reasons = pd.read_csv(quarantine.parent / "quarantine.csv")
    assert len(reasons) == 2 and any("sise" in reason or "'size'" in reason for reason in reasons["reason"])

    assert nightly(config, url).returncode == PARTIAL  # still partial: nothing was fixed

    rows.iloc[130:150].to_csv(night / "garbage.csv", index=False)  # both files fixed and put back
    rows.iloc[100:130].to_csv(night / "misspelled.csv", index=False)
    fixed = nightly(config, url)
    assert fixed.returncode == 0, fixed.stderr
    counts = night_rows(url)
    assert (counts["rows_in"], counts["rows_scored"], counts["logged"]) == (150, 150, 150)
    assert (counts["rows_rejected"], counts["status"]) == (0, "loaded")


def test_a_missing_night_exits_non_zero_and_an_empty_one_zero(tabular_model):
    config, url, _, night = tabular_model
    missing = nightly(config, url)
    assert missing.returncode == MISSING and f"no folder {night}" in missing.stderr
    assert night_rows(url)["status"] == "missing"
    night.mkdir(parents=True)
    empty = nightly(config, url)
    assert empty.returncode == 0, empty.stderr
    assert night_rows(url)["status"] == "empty"


def test_two_data_sets_score_the_same_night_at_once_with_their_own_logs(configure, tmp_path, regression_csv):
    sets = []
    for name, label in (("prices", "price"), ("kinds", "kind")):
        root = tmp_path / name
        url = f"sqlite:///{root / 'overnight.db'}"
        task = "regression" if label == "price" else "classification"
        config = configure(
            overnight={"data_root": str(root), "database_url": url},
            dataset={"path": str(regression_csv), "label": label, "task": task},
        )
        assert build(RegisterModel()).status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
        night = root / "incoming" / NIGHT
        night.mkdir(parents=True)
        pd.read_csv(regression_csv).drop(columns=[label]).iloc[:50].to_csv(night / "night.csv", index=False)
        sets.append((config.rename(tmp_path / f"{name}.cfg"), url, root))

    env = {"PATH": "/usr/bin:/bin"}
    started = [
        subprocess.Popen(
            ["env", "-i", *[f"{k}={v}" for k, v in {**env, "LUIGI_CONFIG_PATH": str(config)}.items()], SCRIPT, NIGHT],
            cwd="/",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for config, _, _ in sets
    ]
    outcomes = [(process.wait(timeout=300), process.stderr.read()) for process in started]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    for _, url, root in sets:
        assert (root / "logs" / f"nightly-{NIGHT}.log").is_file()
        assert night_rows(url)["logged"] == 50
