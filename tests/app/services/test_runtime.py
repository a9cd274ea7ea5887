"""The runtime without HTTP: loading, searching through or around the micro-batcher, gallery changes."""

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from app.services.runtime import Runtime
from models.errors import CheckpointError, NotFoundError, NotReadyError, OverloadedError
from tests.helpers import encode, paper_scan, png_of, serving_settings


def started(root: Path, **overrides: object) -> Runtime:
    runtime = Runtime(serving_settings(root, **overrides))
    runtime.load_active()
    runtime.start_batching()
    return runtime


def test_before_loading_it_says_why_it_cannot_search(tmp_path: Path) -> None:
    runtime = Runtime(serving_settings(tmp_path))
    with pytest.raises(NotReadyError, match="starting"):
        runtime.require_search()
    runtime.load_active()
    with pytest.raises(NotReadyError, match="no active model"):
        runtime.require_search()


def test_batched_and_unbatched_searches_find_the_same_neighbours(trained_dir: Path, train_images: np.ndarray) -> None:
    batched, alone = started(trained_dir), started(trained_dir, batching=False)
    try:
        uploads = [png_of(image) for image in train_images[:8]]

        async def search_all(runtime: Runtime) -> list:
            return await asyncio.gather(*(runtime.search_upload(data, 5) for data in uploads))

        via_batcher, one_by_one = asyncio.run(search_all(batched)), asyncio.run(search_all(alone))
    finally:
        batched.stop_batching()
    for first, second in zip(via_batcher, one_by_one, strict=True):
        assert [n.item.id for n in first.neighbours] == [n.item.id for n in second.neighbours]
        assert list(first.timings_ms) == ["decode", "preprocess", "encode", "search", "queue"]
        assert list(second.timings_ms) == ["decode", "preprocess", "encode", "search"]
    assert max(outcome.batch_size for outcome in via_batcher) > 1  # concurrent queries shared a batch
    assert [outcome.neighbours[0].item.id for outcome in via_batcher] == list(range(8))


def test_the_batcher_decodes_scans_and_only_larger_uploads_take_the_decode_pool(
    trained_dir: Path, train_images: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    batched, alone = started(trained_dir, batcher_decodes=True), started(trained_dir, batching=False)
    sides = [14, 100, 360, 400, 600]  # pages 28x21 to 1200x900; up to 640x640 pixels the batcher decodes
    uploads = [encode(paper_scan(train_images[i], side)) for i, side in enumerate(sides)]
    pooled: list[tuple[int, int]] = []
    to_pool = batched._decode_in_pool

    async def counted(service: Any, image: Image.Image, at: float) -> Any:
        pooled.append(image.size)
        return await to_pool(service, image, at)

    monkeypatch.setattr(batched, "_decode_in_pool", counted)
    service, in_batcher = batched.require_search(), []
    prepare_alone = service.prepare_alone

    def recorded(upload: Any) -> Any:
        in_batcher.append((upload.size, threading.current_thread().name))
        return prepare_alone(upload)

    monkeypatch.setattr(service, "prepare_alone", recorded)
    try:

        async def search_all(runtime: Runtime) -> list:
            return await asyncio.gather(*(runtime.search_upload(data, 5) for data in uploads))

        via_batcher, one_by_one = asyncio.run(search_all(batched)), asyncio.run(search_all(alone))
    finally:
        batched.stop_batching()
    assert pooled == [(800, 600), (1200, 900)]
    assert sorted(in_batcher) == [
        ((28, 21), "aeseek-batcher"),
        ((200, 150), "aeseek-batcher"),
        ((720, 540), "aeseek-batcher"),
    ]
    for first, second in zip(via_batcher, one_by_one, strict=True):
        assert [n.item.id for n in first.neighbours] == [n.item.id for n in second.neighbours]
        assert list(first.timings_ms) == ["decode", "preprocess", "encode", "search", "queue"]


def test_gallery_changes_are_saved_and_ids_are_not_reused(trained_copy: Path, train_images: np.ndarray) -> None:
    runtime = started(trained_copy, batching=False)
    size = len(runtime.require_search().snapshot.gallery)
    [added] = runtime.add_to_gallery([png_of(train_images[3])], [5], [{"source": "test"}])
    assert added.id == size and added.label == 5 and added.metadata == {"source": "test"}
    runtime.remove_from_gallery(added.id)
    with pytest.raises(NotFoundError):
        runtime.remove_from_gallery(added.id)
    [again] = runtime.add_to_gallery([png_of(train_images[4])], [4], [None])
    assert again.id == size + 1
    reloaded = started(trained_copy, batching=False).require_search().snapshot.gallery
    assert len(reloaded) == size + 1 and reloaded.item(again.id) is not None and reloaded.item(added.id) is None


def test_unknown_model_versions_are_not_found(trained_dir: Path) -> None:
    runtime = Runtime(serving_settings(trained_dir))
    for version in ("0123456789ab", "../../etc", ""):
        with pytest.raises(NotFoundError):
            runtime.model(version)


def test_work_over_the_concurrency_limits_is_refused_at_once(trained_dir: Path, train_images: np.ndarray) -> None:
    runtime = started(
        trained_dir, batching=False, max_concurrent_searches=1, max_concurrent_decodes=1, max_waiting_decodes=0
    )
    query = png_of(train_images[0])
    with runtime.admitted("search"), pytest.raises(OverloadedError, match="AESEEK_MAX_CONCURRENT_SEARCHES"):
        asyncio.run(runtime.search_upload(query, 3))
    large = encode(Image.fromarray(train_images[0]).resize((400, 400)))  # decoded in a worker thread

    decoding = started(trained_dir, batching=False, max_concurrent_decodes=1, max_waiting_decodes=0)

    async def two_at_once() -> list:
        return await asyncio.gather(*(decoding.search_upload(large, 3) for _ in range(2)), return_exceptions=True)

    first, second = asyncio.run(two_at_once())  # one decode may run, none may wait
    assert len(first.neighbours) == 3
    assert isinstance(second, OverloadedError) and "AESEEK_MAX_WAITING_DECODES" in str(second)
    in_batcher = started(trained_dir, batcher_decodes=True, max_concurrent_decodes=1, max_waiting_decodes=0)
    try:
        first, second = asyncio.run(
            _gathered(in_batcher.search_upload(large, 3) for _ in range(2))
        )  # the same bound when the batcher decodes
    finally:
        in_batcher.stop_batching()
    assert len(first.neighbours) == 3
    assert isinstance(second, OverloadedError) and "AESEEK_MAX_WAITING_DECODES" in str(second)
    with decoding.admitted("decode"), pytest.raises(OverloadedError, match="AESEEK_MAX_WAITING_DECODES"):
        decoding.decode_upload(large)  # the pictures' and batches' path: its slot is taken
    # Slots come back: the same searches succeed once nothing else holds them.
    assert len(asyncio.run(runtime.search_upload(large, 3)).neighbours) == 3
    assert asyncio.run(runtime.search_upload(query, 3)).neighbours[0].item.id == 0


async def _gathered(searches: Any) -> list:
    return await asyncio.gather(*searches, return_exceptions=True)


def test_pictures_are_drawn_once_per_gallery_and_per_model(trained_copy: Path, train_images: np.ndarray) -> None:
    runtime = started(trained_copy, batching=False)
    drawn: list[str] = []

    def render(name: str) -> bytes:
        drawn.append(name)
        return name.encode()

    gallery = runtime.require_search().snapshot.gallery
    for _ in range(3):
        assert runtime.gallery_picture(gallery, "map", lambda: render("map")) == b"map"
        assert runtime.model_picture("v1", "loss", lambda: render("loss")) == b"loss"
    assert drawn == ["map", "loss"]
    runtime.add_to_gallery([png_of(train_images[0])], [5], [None])  # a new gallery: a new map
    runtime.gallery_picture(runtime.require_search().snapshot.gallery, "map", lambda: render("map"))
    assert drawn == ["map", "loss", "map"]


def test_a_model_description_is_read_without_its_weights(trained_copy: Path) -> None:
    [model_dir] = (trained_copy / "models").iterdir()
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")  # corrupt: loading it would fail its checksum
    runtime = Runtime(serving_settings(trained_copy))
    assert runtime.record(model_dir.name).version == model_dir.name
    with pytest.raises(CheckpointError, match="checksum"):
        runtime.model(model_dir.name)


def test_a_burst_of_large_queries_waits_for_decode_slots_instead_of_failing(
    trained_dir: Path, train_images: np.ndarray
) -> None:
    runtime = started(trained_dir, batching=False, max_concurrent_decodes=1, max_waiting_decodes=16)
    large = encode(Image.fromarray(train_images[0]).resize((400, 400)))

    async def burst() -> list:
        return await asyncio.gather(*(runtime.search_upload(large, 3) for _ in range(12)))

    assert all(len(outcome.neighbours) == 3 for outcome in asyncio.run(burst()))  # one slot, twelve served


def test_activating_with_reranking_rebuilds_the_gallery_with_it(trained_copy: Path, train_images: np.ndarray) -> None:
    runtime = started(trained_copy, batching=False, rerank_neighbours=10)
    version = runtime.require_search().snapshot.record.version
    assert runtime.require_search().snapshot.gallery.manifest.index_params.get("rerank_neighbours", 0) == 0
    runtime.activate(version)  # the same model, other re-ranking settings: its gallery is built again
    gallery = runtime.require_search().snapshot.gallery
    assert gallery.manifest.index_params["rerank_neighbours"] == 10 and len(gallery) == 600
    outcome = asyncio.run(runtime.search_upload(png_of(train_images[0]), 5))
    assert len(outcome.neighbours) == 5 and outcome.neighbours[0].item.label == 5  # train_images[0] is a 5
