"""`overnight example-data`, `db upgrade|current` and `doctor`: setting up and checking a machine."""

from __future__ import annotations

import sys

import click

from pipeline.store import database
from tasks.cli.app import fail_on_database_errors, main
from tasks.config import data_root, database_url


@main.command("example-data")
def example_data() -> None:
    """Write scikit-learn's digits: training images, nightly batches and late labels."""
    from pipeline.examples import write_examples

    root = data_root()
    written = write_examples(root)
    click.echo(f"{written.training_images} training digits in {root / 'raw' / 'digits'}")
    click.echo(f"nightly batches in {root / 'incoming'}: {', '.join(written.nights)} (the last one is shifted)")
    click.echo(f"late labels in {root / 'feedback'}: {', '.join(written.feedback_dates)}")


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Bring the database to the newest schema (tasks also do this on first use)."""
    url = database_url()
    fail_on_database_errors(lambda: database.upgrade(url, revision))
    click.echo(f"{database.mask_url(url)} at revision {database.current_revision(url)}")


@db.command("current")
def db_current() -> None:
    """Print the database's schema revision."""
    url = database_url()
    revision = fail_on_database_errors(lambda: database.current_revision(url))
    click.echo(f"{database.mask_url(url)} at revision {revision or '(empty)'}")


@main.command()
def doctor() -> None:
    """What this machine offers: TensorFlow, Keras, GPUs, mixed precision, the database."""
    import os

    from pipeline.common import environment

    url = database_url()
    click.echo(f"python      {environment.hardware()['python']} on {environment.hardware()['platform']}")
    listed = environment.hardware()["gpus"]  # nvidia-smi: no CUDA initialised to learn this
    click.echo(f"nvidia-smi  {', '.join(listed) if listed else 'no NVIDIA GPU listed'}")
    # CUDA's start-up errors are worth seeing only where there is a card to start.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if listed else "3")
    import keras
    import tensorflow as tf

    click.echo(f"tensorflow  {tf.__version__} (CUDA build: {tf.test.is_built_with_cuda()})")
    click.echo(f"keras       {keras.__version__}")
    visible = tf.config.list_physical_devices("GPU")
    click.echo(f"visible     {len(visible)} GPU(s) to TensorFlow" + (": " if visible else ""))
    for device in visible:
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        # float16 tensor cores from compute capability 7.0 (Volta) on.
        mixed = "yes" if capability and capability >= (7, 0) else "no (needs compute capability 7.0)"
        click.echo(
            f"            {device.name} {details.get('device_name', '')} capability {capability}; "
            f"mixed precision: {mixed}"
        )
    if not visible:
        click.echo("            mixed precision and XLA speed-ups need a GPU; training runs on the CPU")
    click.echo(f"database    {database.mask_url(url)}")
    missing = database.missing_sqlite_file(url)
    if missing is not None:  # opening it would create it: the doctor changes nothing
        click.echo(f"            not created yet: the first task (or `overnight db upgrade`) creates {missing}")
        return
    try:
        revision = database.current_revision(url)  # reads only: the doctor changes nothing
        click.echo(
            f"            reachable, schema revision {revision or '(empty)'}; "
            f"newest {database.head_revision()} (tasks and `overnight db upgrade` migrate)"
        )
    except database.DatabaseUnavailable as error:
        click.echo(f"            NOT reachable: {error}")
        sys.exit(2)
