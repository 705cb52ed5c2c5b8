"""Shared settings: `[overnight]` and `[dataset]` in luigi.cfg, read when used (never at import)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import luigi
from luigi.parameter import ParameterVisibility

from pipeline.common.files import ensure_dir
from pipeline.errors import DataError
from pipeline.layout import Layout
from pipeline.stages.contract import DatasetConfig, parse_kinds, parse_missing_values
from pipeline.store.database import mask_url


def flag(**kwargs) -> luigi.BoolParameter:
    """A yes/no parameter that takes both forms on the command line: the bare `--TrainModel-debug`
    and `--TrainModel-debug true` (or `false`); Luigi's default takes only the bare flag and calls
    `true` an unrecognized argument."""
    return luigi.BoolParameter(parsing=luigi.BoolParameter.EXPLICIT_PARSING, **kwargs)


DATABASE_URL_VARIABLE = "OVERNIGHT_DATABASE_URL"
CONFIG_PATH_VARIABLE = "LUIGI_CONFIG_PATH"


class overnight(luigi.Config):  # noqa: N801 - Luigi names the section after the class
    """Where the pipeline keeps its files and records its runs, and what its hours cost."""

    data_root = luigi.Parameter(
        default="data",
        description="the pipeline's working tree: every stage's output, the nights' `incoming/` and `feedback/` "
        "folders, logs and locks",
    )
    # Private and insignificant: Luigi never puts it in a task id or sends it to the scheduler,
    # because a URL may carry a password (better kept in OVERNIGHT_DATABASE_URL anyway).
    database_url = luigi.Parameter(
        default="sqlite:///data/overnight.db",
        significant=False,
        visibility=ParameterVisibility.PRIVATE,
        description=f"SQLAlchemy URL of the database that records runs, models and predictions; the environment "
        f"variable `{DATABASE_URL_VARIABLE}` wins over it (keep a password there, never here)",
    )
    private = flag(
        default=True,
        description="`data_root` (and a new SQLite file's folder) is created readable by its owner only (0700, the "
        "SQLite file 0600); so are the nightly logs, lock files and `labeling-queue --output` files, also in a "
        "data root others can enter",
    )
    run_lease_s = luigi.FloatParameter(
        default=300.0,
        significant=False,
        description="seconds: a running run writes its heartbeat every third of this; a running run of any host "
        "silent for longer is settled `abandoned` by the next process that starts (its own host settles it at "
        "once, by its pid)",
    )
    tasks_per_card = luigi.IntParameter(
        default=1,
        significant=False,
        description="GPU tasks that may share one card of a host at a time: each takes a card of its host before "
        "it starts (`CUDA_VISIBLE_DEVICES`) and waits while none is free",
    )
    # Cost accounting: each run's estimated cost = wall hours * price_per_hour + GPU hours * gpu_price_per_hour.
    price_per_hour = luigi.FloatParameter(
        default=0.0,
        description="price of an hour of this machine: a run's estimated cost is its wall hours times this, plus "
        "its GPU hours times `gpu_price_per_hour`; 0: free",
    )
    gpu_price_per_hour = luigi.FloatParameter(
        default=0.0,
        description="extra price of an hour of GPU use (the wall hours of TensorFlow tasks on a machine with a "
        "GPU), added to a run's estimated cost; 0: free",
    )


class dataset(luigi.Config):  # noqa: N801
    """The training data: where it is, what to predict, how its columns read."""

    path = luigi.Parameter(
        default="data/raw/digits",
        description="a CSV or Parquet file, a folder of them, or an image folder (one sub-folder per class); in a "
        "folder, a link to a file outside it, a broken link or a FIFO stops the run, unread (hidden files are "
        "left out)",
    )
    label = luigi.Parameter(
        default="label", description="the column to predict (an image folder: the class folder's name)"
    )
    task = luigi.ChoiceParameter(
        choices=["classification", "regression"], default="classification", description="classification or regression"
    )
    id_column = luigi.Parameter(
        default="", description="a column of stable example ids; empty: the image file name, else a hash of the row"
    )
    group_column = luigi.Parameter(
        default="", description="rows of one group never straddle splits (and it is no feature); empty: no groups"
    )
    time_column = luigi.Parameter(
        default="",
        description="split by time: the oldest rows train, the newest test (and it is no feature); empty: a "
        "random split",
    )
    slice_column = luigi.Parameter(
        default="", description="test metrics are reported per value of this column too; empty: none"
    )
    kinds = luigi.Parameter(
        default="",
        description="column kinds where inference is not wanted, e.g. `island:categorical, year:numeric, "
        "review:text, photo:image, sold:datetime`; empty: all inferred",
    )
    include_feedback = flag(
        default=False, description="add the nightly examples whose late labels arrived to the training data"
    )
    date_format = luigi.Parameter(
        default="",
        description="how dates like 03/04 read: day-first, month-first or a format such as %%d/%%m/%%Y (written "
        "%%%%d/%%%%m/%%%%Y in luigi.cfg); ISO dates always read as ISO; empty: decided by the values",
    )
    missing_values = luigi.Parameter(
        default="",
        description="more cell texts that mean no value, comma-separated, e.g. `-, ?, n.a.` (besides NA, NaN, "
        "null, ...)",
    )
    group_pattern = luigi.Parameter(
        default="",
        description=r"image folders: a regular expression whose first group in a file name is the file's group, "
        r"e.g. `^(.+)_\d+px`; empty: no groups",
    )
    image_root = luigi.Parameter(
        default="",
        description="a folder every image path must lie in, links and `..` resolved (training data and nights); "
        "other images are rejected rows; empty: images are read wherever their paths point",
    )


class gc(luigi.Config):  # noqa: N801 - Luigi names the section after the class
    """What `overnight gc` keeps."""

    keep_nights = luigi.IntParameter(
        default=14,
        description="`overnight gc` keeps the outputs of this many last nights (and days of images answered online)",
    )
    keep_days = luigi.IntParameter(
        default=7, description="`overnight gc` keeps whatever the runs of this many last days produced"
    )


class labeling(luigi.Config):  # noqa: N801 - Luigi names the section after the class
    """Late labels from several people: who labeled what, whose label wins, who is flagged."""

    annotator_column = luigi.Parameter(
        default="annotator", description="a feedback file's column naming who labeled each row"
    )
    default_annotator = luigi.Parameter(
        default="unknown", description="who labeled the rows of a feedback file without the annotator column"
    )
    tie_order = luigi.Parameter(
        default="",
        description="annotators, comma-separated, whose label wins a tie, first first; empty: a tie stays unresolved",
    )
    min_agreement = luigi.FloatParameter(
        default=0.7,
        description="an annotator agreeing with the resolved labels less often than this share (over at least "
        "`min_compared` labels) is flagged",
    )
    min_compared = luigi.IntParameter(
        default=10, description="labels on examples others labeled too, before an annotator can be flagged"
    )
    recheck_share = luigi.FloatParameter(
        default=0.1,
        description="share of a `labeling-queue --annotator` file that re-checks others' labels, chosen at random",
    )
    seed = luigi.IntParameter(default=0, description="seed of the random choice of re-checks")


class drift(luigi.Config):  # noqa: N801 - Luigi names the section after the class
    """Acknowledged drift alerts (`overnight drift ack`)."""

    acknowledged_factor = luigi.FloatParameter(
        default=2.0,
        description="`overnight drift ack` covers its alerts up to this many times the acknowledged score; "
        "a score past it fails the night again",
    )


class serve(luigi.Config):  # noqa: N801 - Luigi names the section after the class
    """`overnight serve`, predictions on request."""

    host = luigi.Parameter(
        default="127.0.0.1",
        description="where `overnight serve` listens: 127.0.0.1 this machine only, 0.0.0.0 every address",
    )
    port = luigi.IntParameter(default=8080, description="the port `overnight serve` listens on")
    workers = luigi.IntParameter(default=1, description="server processes, each with the model loaded")
    max_body_bytes = luigi.IntParameter(default=10 * 1024 * 1024, description="larger request bodies get 413")
    max_rows = luigi.IntParameter(default=10_000, description="rows in one request; more get 413")
    timeout_seconds = luigi.FloatParameter(default=30.0, description="a request not answered by then gets 503")
    batch_wait_ms = luigi.FloatParameter(
        default=1.0, description="milliseconds a request waits for others to be scored in one model call with it"
    )
    max_batch_rows = luigi.IntParameter(default=4096, description="rows scored in one model call, across requests")
    reload_seconds = luigi.FloatParameter(
        default=2.0, description="how often the production model is looked up (a promotion takes effect)"
    )
    load_seconds = luigi.FloatParameter(default=1.0, description="how often answered rows are moved into SQL")


SERVE_TOKEN_VARIABLE = "OVERNIGHT_SERVE_TOKEN"


def serve_settings():
    """`[serve]` and OVERNIGHT_SERVE_TOKEN (pipeline.serving.app.ServeSettings)."""
    from pipeline.serving.app import ServeSettings

    return settings_from(ServeSettings, serve(), token=os.environ.get(SERVE_TOKEN_VARIABLE, ""))


def labeling_settings():
    """When an annotator is flagged (pipeline.stages.agreement.AgreementSettings)."""
    from pipeline.stages.agreement import AgreementSettings

    return settings_from(AgreementSettings, labeling())


def tie_order() -> tuple[str, ...]:
    """`[labeling] tie_order` as names, first first."""
    return tuple(dict.fromkeys(name.strip() for name in labeling().tie_order.split(",") if name.strip()))


def require_config_file() -> None:
    """Stop when LUIGI_CONFIG_PATH names no file: Luigi skips a missing file without a word, and
    a mistyped path would run the night on the defaults, into the default database.

    Raises:
        DataError: one line naming the path.
    """
    path = os.environ.get(CONFIG_PATH_VARIABLE)
    if path and not Path(path).is_file():
        raise DataError(
            f"{CONFIG_PATH_VARIABLE}={path}: no such file; Luigi would run on the defaults instead "
            "(fix the path, or unset it to use ./luigi.cfg)"
        )


def data_root() -> Path:
    """The pipeline's working tree, created on first use: mode 0700 unless `private = false`.

    Everything the pipeline writes lives under it, so a private root keeps run parameters,
    rejected rows and predictions from other users without chmod-ing each file. An existing
    folder keeps its mode. Absolute (links kept as named): the registry and the runs ledger store
    the paths under it, and a relative one would mean another folder from another working
    directory or host.
    """
    settings = overnight()
    return ensure_dir(Path(settings.data_root).absolute(), private=settings.private)  # one stat once it exists


def layout() -> Layout:
    """Every folder under the data root (pipeline/layout.py)."""
    return Layout(data_root())


def database_url() -> str:
    return os.environ.get(DATABASE_URL_VARIABLE) or overnight().database_url


def database_key() -> str:
    """Which database this is, without its password: part of the version of outputs that depend on
    the database's content (a registration depends on which model is in production there)."""
    return hashlib.sha256(mask_url(database_url()).encode()).hexdigest()[:16]


def dataset_config() -> DatasetConfig:
    settings = dataset()
    return settings_from(
        DatasetConfig,
        settings,
        kinds=parse_kinds(settings.kinds),
        missing_values=parse_missing_values(settings.missing_values),
    )


def settings_from(settings_class, parameters, **computed):
    """A pipeline settings dataclass from the Luigi parameters of the same names (a task or a
    luigi.Config); `computed` gives the fields that are not a parameter as they are."""
    names = [field.name for field in dataclasses.fields(settings_class) if field.name not in computed]
    return settings_class(**{name: getattr(parameters, name) for name in names}, **computed)
