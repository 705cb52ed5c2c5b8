"""Prediction stage: score a night's files with a registered model; load them into SQL."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import luigi
import sqlalchemy as sa

from pipeline.artifacts.folder import DamagedOutput
from pipeline.artifacts.model import MODEL, ModelFolder
from pipeline.artifacts.prediction import NightScores
from pipeline.common.columns import IMAGE_ID_COLUMN
from pipeline.common.faults import pause_point
from pipeline.common.metrics import Metric
from pipeline.errors import DataError
from pipeline.stages.data_files import batch_files, shard_files
from pipeline.stages.fingerprint import fingerprint
from pipeline.store import tables
from tasks import recording
from tasks.base import ONE_CARD, Outcome, RecordedTask, StageTask
from tasks.base.night import NightModelParameters
from tasks.config import dataset_config, layout
from tasks.validation import image_root, max_image_bytes

logger = logging.getLogger(__name__)


MISSING = "missing"  # the fingerprint, and the status, of a night whose folder does not exist


def folder_fingerprint(folder: Path) -> str:
    """The files' fingerprint; empty for an empty folder (an empty night), "missing" without one."""
    if not folder.is_dir():
        return MISSING
    if not batch_files(folder):
        return ""
    return fingerprint(folder, layout().fingerprint_cache())


class ModelVersionMixin(NightModelParameters):
    """`model_version` empty means the production model at scheduling time, resolved once."""

    @property
    def model(self) -> str:
        if not getattr(self, "_model", None):
            self._model = self.model_version or recording.production_version()
        return self._model

    def model_folder(self) -> ModelFolder:
        return registered_model_folder(self.model)


def registered_model_folder(version: str) -> ModelFolder:
    """The registered model's folder, there and whole, or one line saying how to get it back."""
    folder = ModelFolder(Path(recording.model_row(version)["path"]))
    hint = (
        f"rebuild model {version} with `luigi --module tasks RegisterModel` and the parameters it was trained "
        "with (`overnight models`, `overnight show`), or go back to the previous one with `overnight rollback`"
    )
    if not folder.path.is_dir():
        raise DataError(f"model {version}'s folder {folder.path} is gone (moved aside if damaged): {hint}")
    registered_files = recording.model_row_files(version)
    if not folder.is_sealed():
        # A lost seal is rebuilt only from files the registry's hashes vouch for (a file changed
        # with its seal deleted would otherwise be sealed as good).
        folder.seal_from_registry(registered_files)
    damage = folder.damage()
    if damage is not None:
        aside = folder.move_aside()
        raise DamagedOutput(f"{damage}: model {version}'s folder was moved to {aside}; {hint}")
    # The folder's own seal can be rewritten with the file; the registry's hash is the one
    # recorded when the model was registered.
    registered, found = recording.model_row_sha256(version), folder.sha256()
    if registered and found != registered:
        raise DataError(
            f"model {version}: {folder.path / MODEL} is not the registered file (sha256 {found[:12]}, "
            f"registered {registered[:12]}): put the registered file back, or {hint}"
        )
    for name, found in folder.hashes().items():
        if name in registered_files and found != registered_files[name]:
            raise DamagedOutput(
                f"model {version}: {folder.path / name} is not the registered file (sha256 {found[:12]}, "
                f"registered {registered_files[name][:12]}): put the registered file back, or {hint}"
            )
    return folder


class NightScoring(ModelVersionMixin, StageTask):
    """What scoring a night and scoring a shard of it share: the model, the files, the rules."""

    stage = "prediction"
    artifact = NightScores
    gpu = ONE_CARD

    chunk_rows = luigi.IntParameter(
        default=50_000,
        significant=False,
        description="rows validated, preprocessed and scored at a time (memory stays flat)",
    )

    def identity(self) -> dict:
        return {
            "model": self.model,
            "incoming": folder_fingerprint(layout().incoming(self.date)),
            "max_image_bytes": max_image_bytes(),  # which image rows are rejected unread
            **image_root(),
        }

    def output(self):
        return luigi.LocalTarget(str(layout().scores(self.date, self.version)))

    @property
    def data_version(self) -> str | None:
        return recording.model_row(self.model)["data_version"]

    def score(self, out: NightScores, files: list[Path] | None = None, every_entry: bool = False) -> Outcome:
        """Score the night's files, or those given (a shard's), into `out`; `every_entry`: also
        quarantine or name the night's entries no shard reads (raw.batch_sources)."""
        from pipeline.stages import raw
        from pipeline.stages.prediction import score_batch

        model = self.model_folder()
        preprocessor = model.preprocessor()
        schema, folder = preprocessor.schema, layout().incoming(self.date)
        images = schema.columns_of("image")
        image_column = images[0] if images and schema.id_column == IMAGE_ID_COLUMN else None
        sources = raw.batch_sources(
            folder,
            image_column=image_column,
            chunk_rows=self.chunk_rows,
            missing_values=schema.missing_values,
            files=files,
            every_entry=every_entry,
        )
        keras_model = model.load_model() if sources else None  # an empty night needs no model
        with out.sink(schema) as sink:
            summary = score_batch(
                sources,
                preprocessor,
                keras_model,
                sink,
                progress=lambda rows: self.status(f"{rows} rows scored"),
                max_image_bytes=max_image_bytes(),
                image_root=dataset_config().image_root,
            )
        for line in summary.problems:
            logger.warning("%s", line)
        return self.summarize(out, summary.as_dict())

    def summarize(self, out: NightScores, summary: dict) -> Outcome:
        """batch.json, one log line, and the run's row counts."""
        folder = layout().incoming(self.date)
        status = MISSING if not folder.is_dir() else summary["status"]
        out.write_summary(
            {
                "date": self.date.isoformat(),
                "model_version": self.model,
                "incoming": str(folder),
                **summary,
                "status": status,
            }
        )
        logger.info(
            "%s%s: %d rows in, %d rejected, %d scored by model %s",
            self.date,
            self.part(),
            summary["rows_in"],
            summary["rows_rejected"],
            summary["rows_scored"],
            self.model,
        )
        return Outcome(
            rows_in=summary["rows_in"],
            rows_rejected=summary["rows_rejected"],
            metrics=[Metric("rows_scored", summary["rows_scored"], split="batch")],
        )

    def part(self) -> str:
        """Which part of the night this is, in words: "" for the whole night."""
        return ""


class BatchPredict(NightScoring):
    """Validate a night's files against the training schema and score them in chunks; with
    `shards` above 1, as that many ScoreShard tasks (on other cards, other hosts), merged here."""

    shards = luigi.IntParameter(
        default=1,
        description="score the night's files as this many ScoreShard tasks (runs of about equal bytes), each on a "
        "card of its own, that Luigi's workers take side by side (`--workers N` on one host, or several hosts "
        "sharing a scheduler), merged before the night is loaded once; 1: one task",
    )

    @property
    def gpu(self) -> str | None:
        return None if self.shards > 1 else ONE_CARD  # merging shards needs no card

    def requires(self):
        if self.shards < 1:
            raise DataError(f"[BatchPredict] shards must be 1 or more, not {self.shards}")
        if self.shards == 1:
            return {}
        return {
            f"shard {index}": ScoreShard(
                date=self.date, model_version=self.model, shard=index, shards=self.shards, chunk_rows=self.chunk_rows
            )
            for index in range(self.shards)
        }

    def build(self, out: NightScores) -> Outcome:
        if self.shards == 1:
            return self.score(out)
        from pipeline.artifacts.shards import merge_shards

        parts = list(self.inputs().values())  # in shard order
        _check_shards_cover_the_night(parts, layout().incoming(self.date))
        schema = self.model_folder().preprocessor().schema
        merged = merge_shards(parts, out, schema, progress=lambda rows: self.status(f"{rows} rows merged"))
        return self.summarize(out, {**merged, "shards": self.shards})


class ScoreShard(NightScoring):
    """One shard of a night's files (`[BatchPredict] shards`), scored on a card of its own."""

    shard = luigi.IntParameter(description="which shard, from 0")
    shards = luigi.IntParameter(description="how many shards the night's files are cut into")

    def build(self, out: NightScores) -> Outcome:
        if not 0 <= self.shard < self.shards:
            raise DataError(f"ScoreShard: shard {self.shard} of {self.shards}: expected 0 <= shard < shards")
        # The cut is made once, here, and recorded: BatchPredict checks that the shards' files
        # are the night's, each once (a file still growing could be cut differently elsewhere).
        self._files = shard_files(batch_files(layout().incoming(self.date)), self.shard, self.shards)
        outcome = self.score(out, files=self._files, every_entry=self.shard == 0)
        pause_point(f"night:shard-scored:{self.shard}")  # where the crash tests kill one shard
        return outcome

    def summarize(self, out: NightScores, summary: dict) -> Outcome:
        files = [str(file) for file in self._files]
        return super().summarize(out, {**summary, "shard": self.shard, "shards": self.shards, "files": files})

    def part(self) -> str:
        return f" shard {self.shard + 1} of {self.shards}"


class BatchLoaded(luigi.Target):
    """Complete when `batches` holds this date and model, loaded from this very prediction output."""

    def __init__(self, date, model_version: str, batch_version: str):
        self.date, self.model_version, self.batch_version = date, model_version, batch_version

    def exists(self) -> bool:
        engine = recording.reader()
        if engine is None:
            return False  # no database yet: nothing is loaded
        query = (
            sa.select(tables.batches.c.batch_date)
            .join(tables.runs, tables.runs.c.run_id == tables.batches.c.run_id)
            .where(
                tables.batches.c.batch_date == self.date,
                tables.batches.c.model_version == self.model_version,
                tables.runs.c.version == self.batch_version,
            )
        )
        with engine.connect() as connection:
            return connection.execute(query).first() is not None

    def __str__(self) -> str:
        return f"batches({self.date}, {self.model_version})"


class LogPredictions(ModelVersionMixin, RecordedTask):
    """Every scored row into `predictions` with its `batches` row, in one transaction."""

    def requires(self):
        return BatchPredict(date=self.date, model_version=self.model)

    @property
    def version(self) -> str:
        return self.requires().version

    def output(self):
        return BatchLoaded(self.date, self.model, self.version)

    def complete(self) -> bool:
        # The rows in the database make the load look done: without this, a truncated
        # predictions.parquet of a loaded night would stay in place on every rerun.
        return super().complete() and scores_whole(self.requires())

    def execute(self) -> Outcome:
        from pipeline.store import prediction_log

        scores = NightScores(Path(self.input().path))
        summary = scores.summary()
        rows = prediction_log.load_batch(
            recording.engine(),
            batch_date=self.date,
            model_version=self.model,
            predictions=scores.prediction_chunks(),
            rows_in=summary["rows_in"],
            rows_rejected=summary["rows_rejected"],
            run_id=self.run_id,
            status=summary.get("status"),
        )
        logger.info("%s: %d predictions of model %s logged", self.date, rows, self.model)
        # Row counts belong to BatchPredict's run; counting them here too would double them.
        return Outcome(metrics=[Metric("rows_logged", rows, split="batch")])


def scores_whole(task: BatchPredict) -> bool:
    """Whether a night's scores folder is whole by its seal's sizes (or gone: cleaned up on purpose);
    a damaged one makes BatchPredict incomplete, which moves it aside and scores the night again."""
    folder = Path(task.output().path)
    damage = NightScores(folder).damage() if folder.is_dir() else None
    if damage is not None:
        logger.warning("%s: %s; the night is scored and loaded again", task.date, damage)
    return damage is None


def _check_shards_cover_the_night(parts: list[NightScores], folder: Path) -> None:
    """Every file of the night in exactly one shard, or one line saying which are not."""
    scored = Counter(file for part in parts for file in part.summary().get("files", []))
    night = {str(file) for file in batch_files(folder)}
    problems = [f"{file} scored {times} times" for file, times in scored.items() if times > 1]
    problems += [f"{file} not scored" for file in sorted(night - set(scored))]
    problems += [f"{file} scored, no longer there" for file in sorted(set(scored) - night)]
    if problems:
        more = " ..." if len(problems) > 3 else ""
        raise DataError(
            f"{folder}: the night's files changed while its shards were scored ({'; '.join(problems[:3])}{more}): "
            "let the files settle and run the night again"
        )
