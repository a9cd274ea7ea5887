"""Dynamic micro-batching of query encoding and index search (as Triton and Ray Serve do).

Concurrent searches hand their queries to one worker thread, which waits at most
`max_wait_ms` after the first query for more (up to `max_size`), then encodes them in one
forward pass and searches them in one index call, and hands each caller its own answer.
A query is a preprocessed 28x28 image or an upload whose header has been read: the worker
decodes and preprocesses those itself, one after another, before the forward pass. That is
the work's own loop without HTTP: on a realistic mix it served 11-25% more uploads per
second than a hop to a decode thread and back per upload, each hop a GIL hand-off and a
wake-up (docs/performance.md). A bad upload fails alone; the rest of its batch goes on.
Every caller in a batch is answered by the same snapshot (model and gallery), and a failure
fails only the batch it happened in, never the worker. Callers on an event loop get asyncio
futures, and a whole batch is handed back to their loop with one wake-up, not one per query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from app.services.search import PreparedQuery, SearchOutcome, SearchService

logger = logging.getLogger("aeseek.batching")


@dataclass
class _Request:
    query: np.ndarray | Image.Image  # an opened upload until the worker prepares it
    k: int
    future: Future[SearchOutcome] | asyncio.Future[SearchOutcome]
    loop: asyncio.AbstractEventLoop | None = None
    prepared_ms: dict[str, float] = field(default_factory=dict)


class MicroBatcher:
    """Collects concurrent queries into batches for `SearchService.search_images`."""

    def __init__(self, service_of: Callable[[], SearchService], max_size: int, max_wait_ms: float) -> None:
        self._service_of = service_of
        self.max_size = max_size
        self.max_wait_s = max_wait_ms / 1000.0
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="aeseek-batcher", daemon=True)
        self._thread.start()

    def submit(self, query: np.ndarray | Image.Image, k: int) -> Future[SearchOutcome]:
        """Queue one query (a 28x28 image, or an opened upload); the future resolves to its outcome."""
        future: Future[SearchOutcome] = Future()
        self._queue.put(_Request(query, k, future))
        return future

    def submit_async(self, query: np.ndarray | Image.Image, k: int) -> asyncio.Future[SearchOutcome]:
        """Queue one query from a coroutine; await the returned future for its outcome."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SearchOutcome] = loop.create_future()
        self._queue.put(_Request(query, k, future, loop))
        return future

    def close(self) -> None:
        """Stop the worker after the queries already queued."""
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        batch = [first]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stopping = self._collect(first)
            self._answer(batch)
            if stopping:
                return

    def _answer(self, batch: list[_Request]) -> None:
        answers: list[tuple[_Request, Answer]] = []
        try:
            service = self._service_of()
            ready = _prepared(service, batch, answers)
            if ready:
                # One index call at the largest k; each caller keeps its own first k.
                queries = [query for _, query in ready]
                outcomes = service.search_images(queries, max(request.k for request, _ in ready))
                for (request, _), outcome in zip(ready, outcomes, strict=True):
                    outcome.neighbours = outcome.neighbours[: request.k]
                    outcome.batch_size = len(ready)
                    answers.append((request, outcome.after(request.prepared_ms)))
        except Exception as error:  # answer every caller not yet answered; the worker lives on
            logger.exception("a batch of %d searches failed", len(batch))
            answered = {id(request) for request, _ in answers}
            answers += [(request, error) for request in batch if id(request) not in answered]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Request, Answer]]] = {}
        for request, answer in answers:
            if request.loop is None:
                _settle(request.future, answer)
            else:
                by_loop.setdefault(request.loop, []).append((request, answer))
        for loop, settled in by_loop.items():
            # A loop that closed while the batch ran has nobody waiting on it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, settled)


Answer = SearchOutcome | BaseException


def _prepared(
    service: SearchService, batch: list[_Request], answers: list[tuple[_Request, Answer]]
) -> list[tuple[_Request, np.ndarray]]:
    """Each request with its 28x28 query, opened uploads decoded and preprocessed; one that fails is answered alone."""
    ready = []
    for request in batch:
        query = request.query
        if request.future.done():  # its caller stopped waiting (a timeout, a disconnect): skip the work
            continue
        if isinstance(query, Image.Image):
            prepared = service.prepare_alone(query)
            if not isinstance(prepared, PreparedQuery):
                answers.append((request, prepared))
                continue
            query, request.prepared_ms = prepared.query, prepared.timings_ms
        ready.append((request, query))
    return ready


def _settle(future: Future[SearchOutcome] | asyncio.Future[SearchOutcome], answer: Answer) -> None:
    if future.done():  # an awaiting caller that was cancelled (timeout, disconnect)
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)


def _settle_all(settled: list[tuple[_Request, Answer]]) -> None:
    for request, answer in settled:
        _settle(request.future, answer)
