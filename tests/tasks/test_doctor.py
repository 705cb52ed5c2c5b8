"""`overnight doctor` reports the machine truthfully."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.common import environment
from pipeline.store import database
from tasks.cli import main as overnight

pytestmark = pytest.mark.slow


def test_doctor_reports_versions_gpus_and_a_reachable_database(tmp_path):
    import keras
    import tensorflow as tf

    url = f"sqlite:///{tmp_path / 'doctor.db'}"
    database.connect(url)  # created and migrated
    database.dispose_all()
    result = CliRunner().invoke(overnight, ["doctor"], env={"OVERNIGHT_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert f"tensorflow  {tf.__version__}" in result.output and f"keras       {keras.__version__}" in result.output
    visible = len(tf.config.list_physical_devices("GPU"))
    assert f"visible     {visible} GPU(s)" in result.output
    listed = environment.hardware()["gpus"]
    assert ("no NVIDIA GPU listed" in result.output) == (not listed)
    assert f"reachable, schema revision {database.head_revision()}" in result.output and url in result.output


def test_doctor_says_when_the_database_is_unreachable_without_the_password():
    url = "postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/test"
    result = CliRunner().invoke(overnight, ["doctor"], env={"OVERNIGHT_DATABASE_URL": url})
    assert result.exit_code == 2
    assert "NOT reachable" in result.output and "hunter2" not in result.output


def test_doctor_leaves_a_missing_sqlite_database_uncreated(tmp_path):
    url = f"sqlite:///{tmp_path / 'not-yet' / 'overnight.db'}"
    result = CliRunner().invoke(overnight, ["doctor"], env={"OVERNIGHT_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "not created yet" in result.output and str(tmp_path / "not-yet" / "overnight.db") in result.output
    assert not (tmp_path / "not-yet").exists()


def test_doctor_keeps_tensorflow_s_start_up_messages_out_and_can_skip_the_probe(tmp_path):
    url = f"sqlite:///{tmp_path / 'doctor.db'}"
    database.connect(url)
    database.dispose_all()
    probed = CliRunner().invoke(overnight, ["doctor"], env={"OVERNIGHT_DATABASE_URL": url, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert probed.exit_code == 0, probed.output
    noise = [line for line in probed.output.splitlines() if "cuda" in line.lower() and "CUDA build" not in line]
    assert not noise and "oneDNN" not in probed.output and "absl" not in probed.output, probed.output
    skipped = CliRunner().invoke(overnight, ["doctor", "--no-tensorflow"], env={"OVERNIGHT_DATABASE_URL": url})
    assert skipped.exit_code == 0, skipped.output
    assert "tensorflow  not probed (--no-tensorflow)" in skipped.output and "keras" not in skipped.output
    assert "reachable, schema revision" in skipped.output
