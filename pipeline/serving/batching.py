"""Requests that arrive together are scored together: one model call, one journal fsync.

While a group is being scored (in one thread: the model and the journal see one caller), new
requests queue; the next group takes all that waited, up to a number of rows, after a small
wait that lets near-simultaneous requests join (`[serve] batch_wait_ms`). At concurrency 1 a
request waits only that small wait; at concurrency 32 one model call answers many of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pipeline.serving.scoring import Pending

__all__ = ["Batcher"]

logger = logging.getLogger(__name__)


class Batcher:
    """Collects pending requests on the event loop and scores them in groups on one thread."""

    def __init__(self, score_group: Callable[[list[Pending]], list], *, wait_seconds: float, max_rows: int):
        self._score_group = score_group
        self._wait = wait_seconds
        self._max_rows = max_rows
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="overnight-score")
        self.grouped_requests = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="overnight-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def submit(self, pending: Pending):
        """The request's Answer, or the RequestError that refused it."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((pending, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = [await self._queue.get()]
            if self._wait > 0:
                await asyncio.sleep(self._wait)
            rows = len(group[0][0].rows)
            while rows < self._max_rows and not self._queue.empty():
                group.append(self._queue.get_nowait())
                rows += len(group[-1][0].rows)
            try:
                answers = await loop.run_in_executor(self._executor, self._score_group, [item for item, _ in group])
            except Exception as error:
                logger.exception("scoring a group of %d request(s) failed", len(group))
                answers = [error] * len(group)
            self.grouped_requests += len(group)
            for (_, future), answer in zip(group, answers):
                if future.done():  # its request timed out meanwhile
                    continue
                if isinstance(answer, Exception) and not hasattr(answer, "status"):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
