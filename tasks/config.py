"""Shared settings: `[overnight]` and `[dataset]` in luigi.cfg, read when used; the GPUs offered
as the Luigi resource `gpu` (offer_detected_gpus, when `tasks` is imported)."""

from __future__ import annotations

import os
from pathlib import Path

import luigi
from luigi.parameter import ParameterVisibility

from pipeline.common.files import ensure_dir
from pipeline.stages.schema import DatasetConfig, parse_kinds

DATABASE_URL_VARIABLE = "OVERNIGHT_DATABASE_URL"


class overnight(luigi.Config):  # noqa: N801 - Luigi names the section after the class
    data_root = luigi.Parameter(default="data", description="working tree of the pipeline")
    # Private and insignificant: Luigi never puts it in a task id or sends it to the scheduler,
    # because a URL may carry a password (better kept in OVERNIGHT_DATABASE_URL anyway).
    database_url = luigi.Parameter(
        default="sqlite:///data/overnight.db",
        significant=False,
        visibility=ParameterVisibility.PRIVATE,
        description=f"SQLAlchemy URL; {DATABASE_URL_VARIABLE} wins over it",
    )
    private = luigi.BoolParameter(
        default=True,
        parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="create data_root readable by its owner only (mode 0700)",
    )
    # Cost accounting: each run's estimated cost = wall hours * price_per_hour + GPU hours * gpu_price_per_hour.
    price_per_hour = luigi.FloatParameter(default=0.0, description="price of an hour of this machine")
    gpu_price_per_hour = luigi.FloatParameter(default=0.0, description="extra price of an hour of GPU use")


class dataset(luigi.Config):  # noqa: N801
    path = luigi.Parameter(default="data/raw/digits")
    label = luigi.Parameter(default="label")
    task = luigi.ChoiceParameter(choices=["classification", "regression"], default="classification")
    id_column = luigi.Parameter(default="")
    group_column = luigi.Parameter(default="")
    time_column = luigi.Parameter(default="")
    slice_column = luigi.Parameter(default="")
    kinds = luigi.Parameter(default="", description="e.g. island:categorical, year:numeric, photo:image")
    include_feedback = luigi.BoolParameter(
        default=False,
        parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="train on nightly examples whose labels arrived too",
    )


def offer_detected_gpus() -> None:
    """Offer the GPUs found at start as the Luigi resource `gpu`, unless `[resources] gpu` is set.

    Called when `tasks` is imported, before Luigi's local scheduler reads its resources; the
    count comes from nvidia-smi, so CUDA is not initialised in the process that forks the
    workers. On a machine without a GPU no task asks for the resource and nothing is offered.
    """
    from pipeline.common.environment import usable_gpu_count

    count = usable_gpu_count()
    if not count:
        return
    # Tasks that share a card (gpu set above the card count) take memory as they need it,
    # instead of all of it at start. Inherited by the worker processes; TensorFlow reads it.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    config = luigi.configuration.get_config()
    if not config.has_option("resources", "gpu"):
        if not config.has_section("resources"):
            config.add_section("resources")
        config.set("resources", "gpu", str(count))


def data_root() -> Path:
    """The pipeline's working tree, created on first use: mode 0700 unless `private = false`.

    Everything the pipeline writes lives under it, so a private root keeps run parameters,
    rejected rows and predictions from other users without chmod-ing each file. An existing
    folder keeps its mode.
    """
    settings = overnight()
    return ensure_dir(Path(settings.data_root), private=settings.private)  # one stat once it exists


def database_url() -> str:
    return os.environ.get(DATABASE_URL_VARIABLE) or overnight().database_url


def dataset_config() -> DatasetConfig:
    settings = dataset()
    return DatasetConfig(
        path=settings.path,
        label=settings.label,
        task=settings.task,
        id_column=settings.id_column,
        group_column=settings.group_column,
        time_column=settings.time_column,
        slice_column=settings.slice_column,
        kinds=parse_kinds(settings.kinds),
        include_feedback=settings.include_feedback,
    )
