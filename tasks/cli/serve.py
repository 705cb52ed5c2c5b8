"""`overnight serve`: the production model over HTTP (MLflow's scoring protocol), every answer a
row in `predictions` beside the nights' (pipeline/serving/)."""

from __future__ import annotations

import logging
import sys
from importlib import metadata

import click

from pipeline.errors import DataError
from pipeline.store.database import DatabaseUnavailable
from tasks.cli.app import echo, main

logger = logging.getLogger(__name__)


@main.command()
@click.option("--host", default=None, help="address to listen on ([serve] host: 127.0.0.1)")
@click.option("--port", type=int, default=None, help="[serve] port: 8080")
@click.option("--workers", type=click.IntRange(1), default=None, help="server processes ([serve] workers: 1)")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Answer scoring requests with the production model.

    POST /invocations (MLflow's JSON shapes or CSV), GET /ping, /health, /version, /metrics.
    Every answer is journaled on disk before it is sent, then stored in `predictions` (origin
    'online'); a promote or rollback is picked up without a restart."""
    import uvicorn

    from tasks.config import serve as serve_config

    config = serve_config()
    host, port, workers = host or config.host, port or config.port, workers or config.workers
    try:
        app = None if workers > 1 else service_app()  # a model that cannot load stops here, one line
    except (DataError, DatabaseUnavailable) as error:
        echo(f"error: {error}", err=True)
        sys.exit(2)
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: reachable from other machines%s", host, _token_note())
    if app is not None:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)
    else:
        _count_across_workers()
        uvicorn.run(
            "tasks.cli.serve:service_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )


def _count_across_workers() -> None:
    """Give the workers a fresh folder to count in together (pipeline/serving/metrics.py), removed
    when the server stops: a scrape, whichever worker answers it, sums every worker's counts."""
    import atexit
    import os
    import shutil
    import tempfile

    from pipeline.serving.metrics import MULTIPROCESS_DIR

    folder = tempfile.mkdtemp(prefix="overnight-serve-metrics-")
    os.environ[MULTIPROCESS_DIR] = folder  # the workers inherit it before they import prometheus_client
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def _token_note() -> str:
    from tasks.config import SERVE_TOKEN_VARIABLE, serve_settings

    return "" if serve_settings().token else f"; set {SERVE_TOKEN_VARIABLE} to require a bearer token"


def service_app():
    """The Starlette app of one server process: the production model loaded, the journal open.

    Raises:
        DataError: no production model, or its folder is missing, damaged or not the registered file.
        DatabaseUnavailable: the registry cannot be read.
    """
    from pipeline.serving.app import Service, create_app
    from pipeline.serving.journal import Journal
    from pipeline.serving.scoring import Scorer
    from tasks import recording
    from tasks.config import database_url, layout, overnight, serve_settings
    from tasks.validation import max_image_bytes

    settings = serve_settings()
    url = database_url()
    model = load_served_model(recording.production_version())
    journal = Journal(layout().journal(), private=overnight().private)
    scorer = Scorer(
        journal, max_image_bytes=max_image_bytes(), scratch=journal.folder.parent, images=layout().online_images()
    )
    service = Service(
        settings,
        scorer,
        model,
        database_url=url,
        production_version=recording.production_version,
        load_model=load_served_model,
        database_reachable=lambda: _reachable(url),
        package_version=_package_version(),
    )
    return create_app(service)


def load_served_model(version: str):
    """The registered model `version`, checked as a night checks it, ready to answer."""
    from pipeline.serving.scoring import CompiledModel, ServedModel
    from tasks.prediction import registered_model_folder

    folder = registered_model_folder(version)
    return ServedModel(version, folder.preprocessor(), CompiledModel(folder.load_model()))


def _reachable(url: str) -> bool:
    import sqlalchemy as sa

    from pipeline.store import database

    try:
        with database.connect(url).connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True
    except (DatabaseUnavailable, sa.exc.SQLAlchemyError):
        return False


def _package_version() -> str:
    try:
        return metadata.version("overnight")
    except metadata.PackageNotFoundError:
        return ""
