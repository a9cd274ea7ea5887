"""The Milvus gallery store against Milvus Lite and a real Milvus server: same answers as FAISS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index.backend import IndexOperationError, IndexSpec
from index.gallery import Gallery, GalleryItem
from index.milvus import MilvusGallery, MilvusStore
from models.errors import InvalidRequestError

COUNT, DIM = 2000, 16


@pytest.fixture(params=["lite", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path, milvus_prefix: str) -> Iterator[MilvusStore]:
    """A Milvus store over a Milvus Lite file or the session's Milvus server, with a prefix of its own."""
    uri = str(tmp_path / "milvus.db") if request.param == "lite" else request.getfixturevalue("milvus_server")
    milvus = MilvusStore(uri, milvus_prefix)
    yield milvus
    if milvus.active_collection("train") is not None:
        milvus.client.drop_alias(milvus.alias("train"))
    for name in milvus.collections():
        milvus.drop(name)
    milvus.client.close()


def _data(seed: int = 0) -> tuple[np.ndarray, list[GalleryItem], np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((COUNT, DIM)).astype(np.float32)
    items = [GalleryItem(i, "train", i, i % 10, {"n": i} if i % 7 == 0 else None) for i in range(COUNT)]
    images = rng.integers(0, 256, (COUNT, 28, 28), dtype=np.uint8)
    return codes, items, images


def _build(store: MilvusStore, spec: IndexSpec, version: str = "v1") -> tuple[MilvusGallery, Gallery]:
    codes, items, images = _data()
    reference = Gallery.build(codes, items, images, model_version=version, model_variant="conv", gallery="train")
    name = store.create(reference.manifest, spec, items, codes, images)
    return store.open(name), reference


def test_flat_answers_as_faiss_exact_search_with_items_images_and_filters(store: MilvusStore) -> None:
    gallery, reference = _build(store, IndexSpec())
    queries = np.random.default_rng(1).standard_normal((5, DIM)).astype(np.float32)
    for label in (None, 3):
        got, want = gallery.search(queries, 10, label), reference.search(queries, 10, label)
        assert [[n.item for n in row] for row in got] == [[n.item for n in row] for row in want]
        np.testing.assert_allclose(
            [[n.distance for n in row] for row in got], [[n.distance for n in row] for row in want], rtol=1e-4
        )
    assert len(gallery) == COUNT and gallery.item(14) == reference.item(14) and gallery.item(COUNT) is None
    np.testing.assert_array_equal(gallery.image(5), reference.image(5))
    np.testing.assert_allclose(gallery.codes(np.array([9, 2])), reference.codes(np.array([9, 2])))
    assert gallery.items == reference.items and gallery.labels == list(range(10))
    with pytest.raises(InvalidRequestError, match="label=42"):
        gallery.search(queries, 10, 42)


def test_a_full_scan_pages_through_every_row_in_id_order(store: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    gallery, reference = _build(store, IndexSpec())
    gallery.without(5)
    monkeypatch.setattr("index.milvus.QUERY_BATCH", 300)  # pages far smaller than the gallery
    want = [item for item in reference.items if item.id != 5]
    assert gallery.items == want
    codes, items = gallery.all_codes()
    assert items == want and np.allclose(codes, reference.codes(np.array([item.id for item in want])))
    assert len(gallery.images) == COUNT - 1


def test_added_items_get_fresh_ids_that_are_never_reused(store: MilvusStore) -> None:
    gallery, _ = _build(store, IndexSpec())
    codes = np.full((2, DIM), 9.0, dtype=np.float32)
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    _, added = gallery.with_added(codes, [4, 5], images, [{"who": "a"}, None])
    assert [item.id for item in added] == [COUNT, COUNT + 1] and gallery.item(COUNT) == added[0]
    assert gallery.search(codes[:1], 1)[0][0].item == added[0]
    gallery.without(COUNT + 1)
    assert gallery.item(COUNT + 1) is None and len(gallery) == COUNT + 1
    reopened = store.open(gallery.name)  # another process's view of the same collection
    _, again = reopened.with_added(codes[:1], [1], images[:1], [None])
    assert again[0].id == COUNT + 2


def test_the_alias_names_the_active_collection_and_switches_atomically(store: MilvusStore) -> None:
    first, _ = _build(store, IndexSpec(), "v1")
    second, _ = _build(store, IndexSpec(), "v2")
    assert store.active_collection("train") is None
    store.switch("train", first.name)
    assert store.open(store.active_collection("train") or "").manifest.model_version == "v1"
    store.switch("train", second.name)
    assert store.open(store.active_collection("train") or "").manifest.model_version == "v2"
    assert store.collections(version="v1") == [first.name]


@pytest.mark.parametrize("kind", ["IVF", "HNSW", "IVFPQ"])
def test_approximate_index_kinds_map_to_milvus_and_find_the_true_neighbours(store: MilvusStore, kind: str) -> None:
    spec = IndexSpec(kind=kind, nlist=16, nprobe=16, pq_bytes=8)  # type: ignore[arg-type]
    if kind == "IVFPQ" and store.uri.endswith(".db"):
        with pytest.raises(IndexOperationError, match="Milvus Lite cannot build a IVFPQ"):
            _build(store, spec)
        return
    gallery, reference = _build(store, spec)
    queries = np.random.default_rng(2).standard_normal((20, DIM)).astype(np.float32)
    got = [{n.item.id for n in row} for row in gallery.search(queries, 10)]
    want = [{n.item.id for n in row} for row in reference.search(queries, 10)]
    recall = np.mean([len(g & w) / 10 for g, w in zip(got, want, strict=True)])
    # nprobe = nlist scans every cell; HNSW's ef >= k on 2,000 points; PQ loses some precision.
    assert recall >= (0.5 if kind == "IVFPQ" else 0.95)
    assert store.read_manifest(gallery.name).index_kind == kind  # type: ignore[union-attr]
