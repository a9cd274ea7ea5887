"""Tests."""

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.services.batching import MicroBatcher
from app.services.search import SearchOutcome, SearchService, Snapshot
from app.services.workspace import Workspace
from models.data.mnist import MnistSplit
from models.data.preprocessing import DecodeLimits
from models.errors import CorruptImageError
from tests.helpers import encode, paper_scan, png_of


@pytest.fixture(scope="module")
def service(trained_dir: Path) -> SearchService:
    model, record, gallery, _ = Workspace(trained_dir, "idx").load_active()
    return SearchService(Snapshot.of(model, record, gallery), DecodeLimits())


def test_concurrent_queries_are_batched_and_answered_as_alone(
    service: SearchService, full_mnist: dict[str, MnistSplit]
) -> None:
    queries = [full_mnist["test"].images[i] for i in range(24)]
    ks = [1 + i % 7 for i in range(24)]
    batcher = MicroBatcher(lambda: service, max_size=8, max_wait_ms=200)
    results: list = [None] * 24
    start = threading.Barrier(24)

    def ask(i: int) -> None:
        start.wait()
        results[i] = batcher.submit(queries[i], ks[i]).result(timeout=30)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    sizes = [outcome.batch_size for outcome in results]
    assert max(sizes) > 1 and max(sizes) <= 8
    for i, outcome in enumerate(results):
        [alone] = service.search_images([queries[i]], ks[i])
        assert [n.item.id for n in outcome.neighbours] == [n.item.id for n in alone.neighbours]
        assert np.allclose([n.distance for n in outcome.neighbours], [n.distance for n in alone.neighbours], atol=1e-4)


def test_a_failing_batch_fails_its_callers_not_the_batcher(
    service: SearchService, full_mnist: dict[str, MnistSplit]
) -> None:
    calls = {"n": 0}

    def flaky() -> SearchService:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("model unavailable")
        return service

    batcher = MicroBatcher(flaky, max_size=4, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="model unavailable"):
        batcher.submit(full_mnist["test"].images[0], 3).result(timeout=30)
    outcome = batcher.submit(full_mnist["test"].images[0], 3).result(timeout=30)
    assert len(outcome.neighbours) == 3
    batcher.close()


def test_coroutines_get_their_own_answers_and_a_batch_wakes_the_loop_once(
    service: SearchService, full_mnist: dict[str, MnistSplit]
) -> None:
    import asyncio

    queries = [full_mnist["test"].images[i] for i in range(16)]
    batcher = MicroBatcher(lambda: service, max_size=16, max_wait_ms=200)

    async def ask_all() -> tuple[list, int]:
        loop = asyncio.get_running_loop()
        wakeups = 0
        original = loop.call_soon_threadsafe

        def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal wakeups
            wakeups += 1
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        outcomes = await asyncio.gather(*(batcher.submit_async(query, 5) for query in queries))
        return outcomes, wakeups

    outcomes, wakeups = asyncio.run(ask_all())
    batcher.close()
    batches = round(sum(1 / outcome.batch_size for outcome in outcomes))
    assert wakeups == batches < len(queries)  # one wake-up per batch, not per query
    for query, outcome in zip(queries, outcomes, strict=True):
        [alone] = service.search_images([query], 5)
        assert [n.item.id for n in outcome.neighbours] == [n.item.id for n in alone.neighbours]


def test_a_failing_batch_raises_in_awaiting_coroutines(
    service: SearchService, full_mnist: dict[str, MnistSplit]
) -> None:
    import asyncio

    def broken() -> SearchService:
        raise RuntimeError("model unavailable")

    batcher = MicroBatcher(broken, max_size=4, max_wait_ms=0)

    async def ask() -> None:
        await batcher.submit_async(full_mnist["test"].images[0], 3)

    with pytest.raises(RuntimeError, match="model unavailable"):
        asyncio.run(ask())
    batcher.close()


def test_opened_uploads_are_decoded_in_the_batch_and_a_bad_one_fails_alone(
    service: SearchService, full_mnist: dict[str, MnistSplit]
) -> None:
    digits = [full_mnist["test"].images[i] for i in range(6)]
    uploads = [encode(paper_scan(digit, 120 + 40 * i), "JPEG" if i % 2 else "PNG") for i, digit in enumerate(digits)]
    truncated = png_of(digits[0])[:60]  # the header reads, the pixels do not
    batcher = MicroBatcher(lambda: service, max_size=16, max_wait_ms=200)
    opened = [service.open(data) for data in [*uploads[:3], truncated]]
    mixed: list[np.ndarray | Image.Image] = [*opened, *(service.prepare_upload(data).query for data in uploads[3:])]
    futures = [batcher.submit(item, 5) for item in mixed]
    with pytest.raises(CorruptImageError):
        futures[3].result(timeout=30)
    outcomes = [future.result(timeout=30) for future in futures[:3] + futures[4:]]
    batcher.close()
    assert {outcome.batch_size for outcome in outcomes} == {6}  # one batch, less the bad upload
    for data, outcome in zip(uploads, outcomes, strict=True):
        [alone] = service.search_uploads([data], 5)
        assert isinstance(alone, SearchOutcome)
        assert [n.item.id for n in outcome.neighbours] == [n.item.id for n in alone.neighbours]
    for outcome in outcomes[:3]:
        assert list(outcome.timings_ms) == ["decode", "preprocess", "encode", "search"]
    assert list(outcomes[3].timings_ms) == ["encode", "search"]  # prepared before it was submitted
