"""Adaptive micro-batching: concurrent single-row requests are scored together.

One row costs about as much as a few hundred (the per-call overhead of the model dominates),
so the batcher takes the first waiting request plus everything that queued up meanwhile (up
to a row limit) and scores them in one call. Under no load a request goes alone, at once;
under load, requests queue while a batch runs and the next batch grows by itself. An extra
``wait_s`` for company is possible; measured here it added latency, not throughput.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from level3_deployment.loading import LoadedModel


class NoModelError(RuntimeError):
    """No model is loaded yet."""


class OverloadedError(RuntimeError):
    """The queue is full: the caller should come back later (503 with Retry-After)."""


class MicroBatcher:
    """Scores queued single-record requests in batches.

    The queue is bounded (``max_queued``): past it a request is refused at once, so overload
    costs the excess callers an immediate 503 instead of costing every caller a timeout.
    """

    def __init__(self, current: Callable[[], LoadedModel | None], max_rows: int,
                 wait_s: float, on_batch: Callable[[int], None] | None = None,
                 max_queued: int = 256) -> None:
        self._current = current
        self.max_rows = max_rows
        self.wait_s = wait_s
        self.on_batch = on_batch
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[Any]]] = asyncio.Queue(
            maxsize=max_queued)

    @property
    def full(self) -> bool:
        return self._queue.full()

    async def predict(self, record: dict[str, Any]) -> tuple[float, LoadedModel]:
        """P(positive) of one record and the model that scored it.

        Raises:
            OverloadedError: the queue is full.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((record, future))
        except asyncio.QueueFull:
            raise OverloadedError(f"{self._queue.maxsize} requests already queued") from None
        return await future

    async def run(self) -> None:
        """Score batches until cancelled; a batch whose scoring fails fails its callers only."""
        while True:
            batch = [await self._queue.get()]
            deadline = time.perf_counter() + self.wait_s
            while len(batch) < self.max_rows:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0:  # with wait_s == 0: nothing more is waiting, go
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            try:
                await self._score(batch)
            except Exception as err:  # never leave a caller waiting for a dead batch
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                raise

    async def _score(self, batch: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        live = [(r, f) for r, f in batch if not f.done()]  # timed-out callers are gone
        if not live:
            return
        model = self._current()  # one model for the whole batch
        try:
            if model is None:
                raise NoModelError("no model loaded yet")
            probabilities = await asyncio.to_thread(model.predict_records, [r for r, _ in live])
        except Exception as err:
            for _, future in live:
                if not future.done():
                    future.set_exception(err)
            return
        if self.on_batch:
            self.on_batch(len(live))
        for (_, future), p in zip(live, probabilities, strict=True):
            if not future.done():
                future.set_result((float(p), model))
