"""`overnight example-data`, `db upgrade|current` and `doctor`: setting up and checking a machine."""

from __future__ import annotations

import logging
import sys

import click

from pipeline.store import database
from tasks.cli.app import echo, fail_on_database_errors, main
from tasks.config import data_root, database_url

logger = logging.getLogger(__name__)


@main.command("example-data")
def example_data() -> None:
    """Write example data: scikit-learn's digits.

    Training images as PNG files under <data_root>/raw/digits/<class>/, nightly batches under
    incoming/ (one night shifted and dimmed, one empty) and their late labels under feedback/."""
    from pipeline.examples import write_examples

    root = data_root()
    written = write_examples(root)
    echo(f"{written.training_images} training digits in {root / 'raw' / 'digits'}")
    echo(f"nightly batches in {root / 'incoming'}: {', '.join(written.nights)} (the last one is shifted)")
    echo(f"late labels in {root / 'feedback'}: {', '.join(written.feedback_dates)}")


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Bring the database to the newest schema.

    Tasks also do this on first use."""
    url = database_url()
    fail_on_database_errors(lambda: database.upgrade(url, revision))
    echo(f"{database.mask_url(url)} at revision {database.current_revision(url)}")


@db.command("current")
def db_current() -> None:
    """Print the database's schema revision."""
    url = database_url()
    revision = fail_on_database_errors(lambda: database.current_revision(url))
    echo(f"{database.mask_url(url)} at revision {revision or '(empty)'}")


@main.command()
@click.option("--no-tensorflow", is_flag=True, help="skip the TensorFlow probe (it takes seconds)")
def doctor(no_tensorflow: bool) -> None:
    """What this machine offers, and the database.

    TensorFlow, Keras, GPUs, mixed precision, the database. TensorFlow is probed in a child
    process, its start-up messages left out (`-v` shows them)."""
    from pipeline.common import environment

    url = database_url()
    echo(f"python      {environment.hardware()['python']} on {environment.hardware()['platform']}")
    listed = environment.hardware()["gpus"]  # nvidia-smi: no CUDA initialised to learn this
    echo(f"nvidia-smi  {', '.join(listed) if listed else 'no NVIDIA GPU listed'}")
    if no_tensorflow:
        echo("tensorflow  not probed (--no-tensorflow)")
    else:
        _tensorflow_lines(_probe_tensorflow())
    echo(f"database    {database.mask_url(url)}")
    missing = database.missing_sqlite_file(url)
    if missing is not None:  # opening it would create it: the doctor changes nothing
        echo(f"            not created yet: the first task (or `overnight db upgrade`) creates {missing}")
        return
    try:
        revision = database.current_revision(url)  # reads only: the doctor changes nothing
        echo(
            f"            reachable, schema revision {revision or '(empty)'}; "
            f"newest {database.head_revision()} (tasks and `overnight db upgrade` migrate)"
        )
    except database.DatabaseUnavailable as error:
        echo(f"            NOT reachable: {error}")
        sys.exit(2)


def _probe_tensorflow() -> dict:
    """pipeline/common/tensorflow_probe.py's answer; its standard error only with -v (debug)."""
    import json
    import os
    import subprocess

    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline.common.tensorflow_probe"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    logger.debug("TensorFlow probe's standard error:\n%s", completed.stderr)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise click.ClickException(f"TensorFlow could not be imported: {last}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _tensorflow_lines(found: dict) -> None:
    echo(f"tensorflow  {found['tensorflow']} (CUDA build: {found['cuda_build']})")
    echo(f"keras       {found['keras']}")
    gpus = found["gpus"]
    echo(f"visible     {len(gpus)} GPU(s) to TensorFlow" + (": " if gpus else ""))
    for gpu in gpus:
        capability = tuple(gpu["capability"]) if gpu["capability"] else None
        # float16 tensor cores from compute capability 7.0 (Volta) on.
        mixed = "yes" if capability and capability >= (7, 0) else "no (needs compute capability 7.0)"
        echo(f"            {gpu['name']} {gpu['device_name']} capability {capability}; mixed precision: {mixed}")
    if not gpus:
        echo("            mixed precision and XLA speed-ups need a GPU; training runs on the CPU")
