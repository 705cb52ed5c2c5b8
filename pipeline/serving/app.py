"""`overnight serve`'s HTTP side: MLflow's scoring protocol on Starlette, every answer journaled.

Routes: `POST /invocations` (pipeline/serving/requests.py's shapes), `GET /ping`, `/health`,
`/version`, `/metrics` (Prometheus). The model in use is swapped, without a restart, when the
registry's production model changes (`overnight promote`, `rollback`): a thread looks every
`[serve] reload_seconds`, loads the new model beside the old, then switches; a request scored
before the switch names the old version, after it the new one. No request waits for a load.

Errors are one JSON object, MLflow's: {"error_code": ..., "message": ...}, never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pipeline.serving.batching import Batcher
from pipeline.serving.loader_process import LoaderProcess
from pipeline.serving.metrics import ServeMetrics
from pipeline.serving.requests import RequestError, rows_from_body
from pipeline.serving.scoring import Answer, Pending, Scorer, ServedModel

__all__ = ["ServeSettings", "Service", "create_app"]

logger = logging.getLogger(__name__)

ERROR_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 413: "REQUEST_TOO_LARGE", 415: "BAD_REQUEST"}
ERROR_CODES |= {422: "INVALID_PARAMETER_VALUE", 500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE"}


@dataclass(frozen=True)
class ServeSettings:
    """`[serve]` in luigi.cfg, and OVERNIGHT_SERVE_TOKEN."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_rows: int = 10_000  # rows in one request
    timeout_seconds: float = 30.0
    batch_wait_ms: float = 1.0
    max_batch_rows: int = 4096  # rows scored in one model call, across requests
    reload_seconds: float = 2.0  # how often the registry's production model is looked up
    load_seconds: float = 1.0  # how often the journal is moved into SQL
    token: str = ""  # when set, /invocations and /metrics want "Authorization: Bearer <token>"


class Service:
    """The model in use, the journal's loader, the batcher and the metrics of one process."""

    def __init__(
        self,
        settings: ServeSettings,
        scorer: Scorer,
        model: ServedModel,
        *,
        database_url: str,
        production_version: Callable[[], str | None],
        load_model: Callable[[str], ServedModel],
        database_reachable: Callable[[], bool],
        package_version: str = "",
    ):
        self.settings = settings
        self.scorer = scorer
        self.model = model
        self._production_version = production_version
        self._load_model = load_model
        self._database_reachable = database_reachable
        self.package_version = package_version
        self.loader = LoaderProcess(scorer.journal, database_url, interval=settings.load_seconds)
        self.batcher = Batcher(
            self._score, wait_seconds=settings.batch_wait_ms / 1000, max_rows=settings.max_batch_rows
        )
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch_registry, name="overnight-model-watcher", daemon=True)
        self.metrics = ServeMetrics(scorer.journal.backlog)
        self.metrics.serving(model.version)

    def _score(self, group: list[Pending]) -> list:
        answers = self.scorer.score(self.model, group)  # the model at the group's start answers it
        self.metrics.model_calls.inc()
        return answers

    async def start(self) -> None:
        await self.batcher.start()
        self.loader.start()
        self._watcher.start()
        _freeze_what_is_loaded()
        logger.info("serving model %s", self.model.version)

    async def stop(self) -> None:
        self._stop.set()
        await self.batcher.stop()
        await asyncio.to_thread(self.loader.stop)
        self.scorer.journal.close()
        self.metrics.stopping()

    def _watch_registry(self) -> None:
        while not self._stop.wait(self.settings.reload_seconds):
            try:
                version = self._production_version()
                if version and version != self.model.version:
                    logger.info("production model is now %s (was %s): loading it", version, self.model.version)
                    self.model = self._load_model(version)
                    self.metrics.serving(version)
                    _freeze_what_is_loaded()
                    logger.info("serving model %s", version)
            except Exception as error:  # noqa: BLE001 - the current model keeps answering
                logger.warning("could not look up or load the production model: %s", str(error).splitlines()[0])

    def health(self) -> dict:
        reachable = self._database_reachable()
        return {
            "status": "ok",
            "model_version": self.model.version,
            "model_since": self.model.loaded_at.isoformat(),
            "database": "reachable" if reachable else "unreachable",
            "journal_backlog_rows": self.scorer.journal.backlog(),
        }


def create_app(service: Service) -> Starlette:
    settings = service.settings

    def authorized(request: Request) -> bool:
        if not settings.token:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {settings.token}".encode())

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        response = await _invocation(request)
        service.metrics.requests.labels(status=str(response.status_code)).inc()
        service.metrics.latency.observe(time.perf_counter() - started)
        return response

    async def _invocation(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "a bearer token is required (Authorization: Bearer ...; OVERNIGHT_SERVE_TOKEN)")
        try:
            body = await _body(request, settings.max_body_bytes)
            rows = rows_from_body(body, request.headers.get("content-type", ""), max_rows=settings.max_rows)
        except RequestError as error:
            return _error(error.status, error.message)
        if rows.empty:
            return _error(400, "the request has no rows")
        try:
            answer = await asyncio.wait_for(service.batcher.submit(Pending(rows)), settings.timeout_seconds)
        except TimeoutError:
            return _error(503, f"no answer within {settings.timeout_seconds:g} s ([serve] timeout_seconds)")
        except Exception:  # noqa: BLE001 - the batcher logged the trace; the client gets one line
            return _error(500, "internal error: the model could not score the request (the server's log has the trace)")
        if isinstance(answer, RequestError):
            return _error(answer.status, answer.message)
        return _answered(answer, service)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    async def health(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(service.health))

    async def version(request: Request) -> Response:
        return JSONResponse({"overnight": service.package_version, "model_version": service.model.version})

    async def metrics(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "a bearer token is required (Authorization: Bearer ...; OVERNIGHT_SERVE_TOKEN)")
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    return Starlette(routes=routes, lifespan=lifespan)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body has {int(declared):,} bytes; at most {limit:,} ([serve] max_body_bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body has more than {limit:,} bytes ([serve] max_body_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _answered(answer: Answer, service: Service) -> Response:
    service.metrics.rows.labels(outcome="scored").inc(answer.scored)
    service.metrics.rows.labels(outcome="rejected").inc(answer.rejected)
    headers = {"X-Model-Version": answer.model_version}
    if not answer.scored:
        first = next((row["reason"] for row in answer.rows if row.get("reason")), "no row could be scored")
        content = {
            "error_code": ERROR_CODES[422],
            "message": f"no row could be scored; first reason: {first}",
            "model_version": answer.model_version,
            "predictions": answer.rows,
        }
        return JSONResponse(content, status_code=422, headers=headers)
    return JSONResponse({"predictions": answer.rows, "model_version": answer.model_version}, headers=headers)


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error_code": ERROR_CODES[status], "message": message}, status_code=status, headers=headers)


def _freeze_what_is_loaded() -> None:
    """Keep TensorFlow's and the model's objects out of the garbage collector's full passes: with
    them, a full pass takes long enough to show as the slowest answers (gc.freeze, Python 3.7+)."""
    gc.collect()
    gc.freeze()
