from pathlib import Path

import numpy as np
import pytest

from index.backend import IndexSpec
from index.gallery import Gallery, GalleryError, GalleryItem, ModelMismatchError, similarity


def make_gallery(count: int = 50, dim: int = 4) -> Gallery:
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(count, dim)).astype(np.float32)
    items = [GalleryItem(i, "train", i, i % 10) for i in range(count)]
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    return Gallery.build(codes, items, images, model_version="abc", model_variant="conv", gallery="train")


def test_search_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    codes = rng.normal(size=(200, 8)).astype(np.float32)
    items = [GalleryItem(i, "train", i, 0) for i in range(200)]
    gallery = Gallery.build(
        codes, items, np.zeros((200, 28, 28), np.uint8), model_version="v", model_variant="conv", gallery="train"
    )
    query = rng.normal(size=(1, 8)).astype(np.float32)
    [neighbours] = gallery.search(query, 5)
    expected = np.argsort(np.linalg.norm(codes - query, axis=1))[:5]
    assert [n.item.id for n in neighbours] == expected.tolist()
    assert [n.rank for n in neighbours] == [1, 2, 3, 4, 5]
    assert neighbours[0].distance == pytest.approx(float(np.linalg.norm(codes[expected[0]] - query[0])), rel=1e-5)


def test_scores_are_in_zero_one_and_fall_with_distance() -> None:
    gallery = make_gallery()
    [neighbours] = gallery.search(np.zeros((1, 4), np.float32), 10)
    scores = [n.score for n in neighbours]
    assert all(0 < s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    assert similarity(0.0, 2.0) == 1.0 and similarity(2.0, 2.0) == 0.5


def test_k_larger_than_the_gallery_returns_every_item_once() -> None:
    gallery = make_gallery(count=3)
    [neighbours] = gallery.search(np.zeros((1, 4), np.float32), 10)
    assert sorted(n.item.id for n in neighbours) == [0, 1, 2]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    gallery = make_gallery()
    gallery.save(tmp_path)
    loaded = Gallery.load(tmp_path, expected_model_version="abc")
    query = np.ones((1, 4), np.float32)
    assert [n.item for n in loaded.search(query, 5)[0]] == [n.item for n in gallery.search(query, 5)[0]]
    assert np.array_equal(loaded.image(7), gallery.image(7))
    assert loaded.manifest.count == 50 and loaded.manifest.index_kind == "Flat"
    assert set(loaded.manifest.files) == {"index.faiss", "items.jsonl", "images.npy"}
    assert not list(tmp_path.glob("*.tmp")), "no temporary files left behind"


def test_gallery_of_another_model_is_refused(tmp_path: Path) -> None:
    make_gallery().save(tmp_path)
    with pytest.raises(ModelMismatchError, match="built with model abc, but model xyz is loaded"):
        Gallery.load(tmp_path, expected_model_version="xyz")


def test_corrupt_or_partial_files_are_detected(tmp_path: Path) -> None:
    make_gallery().save(tmp_path)
    images = tmp_path / "images.npy"
    data = bytearray(images.read_bytes())
    data[-1] ^= 0xFF
    images.write_bytes(bytes(data))
    with pytest.raises(GalleryError, match="does not match its manifest checksum"):
        Gallery.load(tmp_path)


def test_missing_manifest_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(GalleryError, match="aeseek index build"):
        Gallery.load(tmp_path)


def test_unknown_ids_are_none() -> None:
    gallery = make_gallery()
    assert gallery.item(10_000) is None and gallery.image(-1) is None


@pytest.mark.parametrize("kind", ["IVF", "HNSW", "IVFPQ"])
def test_approximate_index_types_find_near_neighbours_and_filter(kind: str, tmp_path: Path) -> None:
    from index.backend import IndexSpec

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(10, 8)) * 4
    labels = np.repeat(np.arange(10), 300)
    codes = (centres[labels] + rng.normal(size=(3000, 8)) * 0.5).astype(np.float32)
    items = [GalleryItem(i, "train", i, int(label)) for i, label in enumerate(labels)]
    spec = IndexSpec(kind=kind, nlist=32, nprobe=8, pq_bytes=4)  # type: ignore[arg-type]
    gallery = Gallery.build(
        codes, items, np.zeros((3000, 28, 28), np.uint8), model_version="v", model_variant="conv", gallery="train",
        spec=spec,
    )  # fmt: skip
    exact = make_exact(codes, items)
    queries = codes[:50] + 0.01
    truth = [{n.item.id for n in row} for row in exact.search(queries, 10)]
    found = [{n.item.id for n in row} for row in gallery.search(queries, 10)]
    recall = np.mean([len(a & b) / 10 for a, b in zip(truth, found, strict=True)])
    assert recall >= (0.5 if kind == "IVFPQ" else 0.9)
    filtered = gallery.search(queries[:5], 10, label=3)
    assert all(len(row) == 10 and all(n.item.label == 3 for n in row) for row in filtered)
    gallery.save(tmp_path)
    loaded = Gallery.load(tmp_path)
    assert loaded.manifest.index_kind == kind and loaded.manifest.index_params["nprobe"] == 8
    assert [n.item.id for n in loaded.search(queries[:1], 5)[0]] == [
        n.item.id for n in gallery.search(queries[:1], 5)[0]
    ]


def make_exact(codes: np.ndarray, items: list[GalleryItem]) -> Gallery:
    return Gallery.build(
        codes, items, np.zeros((len(items), 28, 28), np.uint8), model_version="v", model_variant="conv", gallery="train"
    )


@pytest.mark.parametrize("kind", ["IVF", "IVFPQ"])
def test_an_ivf_gallery_can_change_after_its_vectors_were_read(kind: str) -> None:
    rng = np.random.default_rng(2)
    codes = rng.normal(size=(3000, 8)).astype(np.float32)
    items = [GalleryItem(i, "train", i, int(i % 10)) for i in range(3000)]
    images = np.zeros((3000, 28, 28), dtype=np.uint8)
    spec = IndexSpec(kind=kind, nlist=16, nprobe=4, pq_bytes=4)  # type: ignore[arg-type]
    gallery = Gallery.build(codes, items, images, model_version="v", model_variant="conv", gallery="train", spec=spec)
    assert gallery.code(5) is not None  # a read by id (feedback, the latent map, filtered search)
    grown, _ = gallery.with_added(codes[:2], [1, 2], images[:2], [None, None])  # failed with an array direct map
    assert len(grown.without(7)) == 3001 and grown.code(3000) is not None
