"""The searchable gallery: vector index + item metadata + images, saved under a manifest.

On disk, one directory per gallery:

    index.faiss     the vector index (see `index.backend`)
    items.jsonl     one JSON object per item: id, split, index (position in its split), label
    images.npy      uint8 (N, 28, 28), row i holds the image of items[i]
    manifest.json   written last; names the model version, dimension, metric, index kind,
                    count, distance scale and the SHA-256 of every file above

Every file is written atomically and the manifest last, so a crash leaves either the old
gallery or a directory whose manifest does not yet vouch for it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.backend import FaissIndex, IndexSpec, VectorIndex, open_backend
from index.rerank import augment_database, expand_with_index
from models.errors import AeseekError, ErrorCode, InvalidRequestError
from models.pca import PCA
from models.storage import atomic_write_bytes, atomic_write_json, atomic_write_with, sha256_file

FORMAT_VERSION = 1
FILES = ("index.faiss", "items.jsonl", "images.npy")


class GalleryError(AeseekError):
    """A gallery on disk is missing, corrupt, or built by another model (server-side state)."""

    code = ErrorCode.GALLERY_CORRUPT


class ModelMismatchError(GalleryError):
    """The gallery's codes come from a different model version than the one loaded."""

    code = ErrorCode.MODEL_MISMATCH


@dataclass(frozen=True)
class GalleryItem:
    """One gallery image's metadata."""

    id: int
    split: str
    index: int
    label: int
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Manifest:
    """What a gallery directory holds and which model made its codes."""

    format_version: int
    model_version: str
    model_variant: str
    dim: int
    metric: str
    index_kind: str
    count: int
    gallery: str
    distance_scale: float
    created: float
    files: dict[str, str]
    index_params: dict[str, Any] = field(default_factory=dict)
    next_id: int = 0  # ids are never reused, even after the newest item is removed


@dataclass(frozen=True)
class Neighbour:
    """One search result: the item, its Euclidean distance and a readable similarity."""

    rank: int
    item: GalleryItem
    distance: float
    score: float


class Gallery:
    """Items, their images and codes, searchable by Euclidean distance."""

    def __init__(self, manifest: Manifest, index: VectorIndex, items: list[GalleryItem], images: np.ndarray) -> None:
        self.manifest = manifest
        self.index = index
        self._items = items
        self._images = images
        self._by_id = {item.id: position for position, item in enumerate(items)}
        self._ids_by_label: dict[int, np.ndarray] | None = None

    @property
    def items(self) -> list[GalleryItem]:
        """Every item, in gallery order."""
        return self._items

    @property
    def images(self) -> np.ndarray:
        """uint8 (N, 28, 28): row i holds the image of items[i]."""
        return self._images

    @classmethod
    def build(
        cls,
        codes: np.ndarray,
        items: list[GalleryItem],
        images: np.ndarray,
        *,
        model_version: str,
        model_variant: str,
        gallery: str,
        spec: IndexSpec | None = None,
        next_id: int = 0,
    ) -> Gallery:
        """A new gallery over `codes` (N, dim), one row per item, in an index of `spec`'s kind (exact by default)."""
        if not (len(codes) == len(items) == len(images)):
            raise ValueError(f"{len(codes)} codes, {len(items)} items and {len(images)} images must match")
        spec = spec or IndexSpec()
        if spec.rerank_neighbours:  # the index holds augmented codes (index/rerank.py)
            codes = augment_database(codes, spec.rerank_neighbours)
        index = FaissIndex.build(spec, codes, np.array([item.id for item in items], dtype=np.int64))
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model_version=model_version,
            model_variant=model_variant,
            dim=int(codes.shape[1]),
            metric="l2",
            index_kind=index.kind,
            count=len(items),
            gallery=gallery,
            distance_scale=typical_neighbour_distance(index, codes),
            created=time.time(),
            files={},
            index_params={key: value for key, value in spec.as_dict().items() if key != "kind"},
            next_id=max(next_id, max((item.id for item in items), default=-1) + 1),
        )
        return cls(manifest, index, items, images)

    def with_added(
        self, codes: np.ndarray, labels: list[int], images: np.ndarray, metadata: list[dict[str, Any] | None]
    ) -> tuple[Gallery, list[GalleryItem]]:
        """A new gallery with these images added under fresh ids, and the added items (this one is left as it was)."""
        first = max(max((item.id for item in self.items), default=-1) + 1, self.manifest.next_id)
        added = [
            GalleryItem(first + i, "added", -1, int(label), extra)
            for i, (label, extra) in enumerate(zip(labels, metadata, strict=True))
        ]
        index = self.index.copy()
        index.add(codes, np.array([item.id for item in added], dtype=np.int64))
        grown = self._replaced(index, [*self.items, *added], np.concatenate([self.images, images]), first + len(added))
        return grown, added

    def without(self, item_id: int) -> Gallery:
        """A new gallery without one item (this one is left as it was); ids are never reused."""
        position = self._by_id[item_id]
        index = self.index.copy()
        index.remove(np.array([item_id], dtype=np.int64))
        items = self.items[:position] + self.items[position + 1 :]
        images = np.delete(self.images, position, axis=0)
        next_id = max(self.manifest.next_id, max(i.id for i in self.items) + 1)
        return self._replaced(index, items, images, next_id)

    def _replaced(self, index: VectorIndex, items: list[GalleryItem], images: np.ndarray, next_id: int) -> Gallery:
        manifest = Manifest(**{**asdict(self.manifest), "count": len(items), "next_id": next_id})
        return Gallery(manifest, index, items, images)

    def __len__(self) -> int:
        return len(self.items)

    def item(self, item_id: int) -> GalleryItem | None:
        """The item with this id, or None."""
        position = self._by_id.get(item_id)
        return None if position is None else self.items[position]

    def image(self, item_id: int) -> np.ndarray | None:
        """The uint8 (28, 28) image of this id, or None."""
        position = self._by_id.get(item_id)
        return None if position is None else self.images[position]

    @property
    def labels(self) -> list[int]:
        """The labels of the gallery's items, each once, in order."""
        return sorted(self._label_groups())

    def _label_groups(self) -> dict[int, np.ndarray]:
        # One pass over the items, once per gallery: the filter's cache holds one entry per class.
        if self._ids_by_label is None:
            groups: dict[int, list[int]] = {}
            for item in self.items:
                groups.setdefault(item.label, []).append(item.id)
            self._ids_by_label = {label: np.array(ids, dtype=np.int64) for label, ids in groups.items()}
        return self._ids_by_label

    def ids_with_label(self, label: int) -> np.ndarray:
        """Ids of the items with this label; InvalidRequestError for a label no item has."""
        groups = self._label_groups()
        if label not in groups:
            shown = ", ".join(map(str, sorted(groups)[:20])) + (" ..." if len(groups) > 20 else "")
            raise InvalidRequestError(f"label={label} is not a label of this gallery's items ({shown})")
        return groups[label]

    def code(self, item_id: int) -> np.ndarray | None:
        """The stored code of an item, or None for an unknown id."""
        return None if item_id not in self._by_id else self.index.vector(item_id)

    def codes(self, ids: np.ndarray) -> np.ndarray:
        """The stored codes (len(ids), dim) of these ids, in their order."""
        return self.index.vectors(np.asarray(ids, dtype=np.int64))

    def all_codes(self) -> tuple[np.ndarray, list[GalleryItem]]:
        """Every stored code and its item, in the same order."""
        return self.codes(np.array([item.id for item in self.items], dtype=np.int64)), self.items

    def search(self, queries: np.ndarray, k: int, label: int | None = None) -> list[list[Neighbour]]:
        """The k nearest items of each query code (Q, dim), nearest first; only `label` when given."""
        allowed = None if label is None else self.ids_with_label(label)
        rerank = int(self.manifest.index_params.get("rerank_neighbours", 0))
        if rerank:  # query expansion against the augmented codes, then the search itself
            queries = expand_with_index(queries, self.index, rerank)
        distances, ids = self.index.search(queries, min(k, len(self)), allowed)
        if allowed is not None and self.index.kind != "Flat":
            distances, ids = self._complete_filtered(queries, k, allowed, distances, ids)
        scale = self.manifest.distance_scale
        results = []
        for row_distances, row_ids in zip(distances, ids, strict=True):
            row: list[Neighbour] = []
            for distance, item_id in zip(row_distances.tolist(), row_ids.tolist(), strict=True):
                if item_id < 0:
                    continue  # FAISS pads with -1 when fewer than k vectors qualify
                item = self.items[self._by_id[item_id]]
                row.append(Neighbour(len(row) + 1, item, distance, similarity(distance, scale)))
            results.append(row)
        return results

    def _complete_filtered(
        self, queries: np.ndarray, k: int, allowed: np.ndarray, distances: np.ndarray, ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows where an approximate filtered search came up short (the label's items lie in cells
        or graph regions it did not visit) are answered exactly over the allowed items instead."""
        wanted = min(k, len(allowed))
        short = np.flatnonzero((ids[:, :wanted] < 0).any(axis=1))
        if len(short) == 0:
            return distances, ids
        vectors = self.index.vectors(allowed)
        distances, ids = distances.copy(), ids.copy()
        for row in short:
            exact = np.linalg.norm(vectors - queries[row], axis=1)
            order = np.argsort(exact, kind="stable")[:wanted]
            distances[row, :wanted], ids[row, :wanted] = exact[order], allowed[order]
            distances[row, wanted:], ids[row, wanted:] = np.inf, -1
        return distances, ids

    def save(self, directory: Path) -> None:
        """Write the gallery atomically, file by file, the manifest last."""
        directory.mkdir(parents=True, exist_ok=True)
        self.index.save(directory / "index.faiss")
        lines = "".join(json.dumps(_item_json(item)) + "\n" for item in self.items)
        atomic_write_bytes(directory / "items.jsonl", lines.encode())
        atomic_write_with(directory / "images.npy", lambda temp: _save_npy(temp, self.images))
        files = {name: sha256_file(directory / name) for name in FILES}
        self.manifest = Manifest(**{**asdict(self.manifest), "files": files})
        atomic_write_json(directory / "manifest.json", asdict(self.manifest))

    @classmethod
    def load(cls, directory: Path, *, expected_model_version: str | None = None) -> Gallery:
        """Read a gallery, verifying its manifest, checksums and model version."""
        manifest = read_manifest(directory)
        if expected_model_version is not None and manifest.model_version != expected_model_version:
            raise ModelMismatchError(
                f"the gallery in {directory} was built with model {manifest.model_version}, "
                f"but model {expected_model_version} is loaded; rebuild it with "
                f"`aeseek index build --model {expected_model_version}`"
            )
        for name in FILES:
            path = directory / name
            if not path.is_file() or sha256_file(path) != manifest.files.get(name):
                raise GalleryError(
                    f"{path} is missing or does not match its manifest checksum (a partial or corrupt "
                    "write); rebuild it with `aeseek index build`"
                )
        index = open_backend(manifest.index_kind, directory / "index.faiss", manifest.index_params)
        try:
            items = [GalleryItem(**json.loads(line)) for line in (directory / "items.jsonl").read_text().splitlines()]
        except (ValueError, TypeError, RecursionError) as error:
            raise GalleryError(
                f"{directory / 'items.jsonl'} holds an unreadable item ({type(error).__name__})"
            ) from None
        # Memory-mapped: worker processes share one copy in the page cache (the file never changes).
        images = np.load(directory / "images.npy", allow_pickle=False, mmap_mode="r")
        if not (len(index) == len(items) == len(images) == manifest.count):
            raise GalleryError(f"{directory}: index, items and images disagree on the gallery size")
        return cls(manifest, index, items, images)


def read_manifest(directory: Path) -> Manifest:
    """The manifest of a gallery directory, or a GalleryError saying what is wrong."""
    path = directory / "manifest.json"
    if not path.is_file():
        raise GalleryError(f"no gallery in {directory} (manifest.json missing); build one with `aeseek index build`")
    try:
        raw = json.loads(path.read_text())
        manifest = Manifest(**raw)
    except (ValueError, TypeError) as error:
        raise GalleryError(f"{path} is not a valid gallery manifest ({error})") from error
    if manifest.format_version != FORMAT_VERSION:
        raise GalleryError(f"{path}: gallery format {manifest.format_version} is not {FORMAT_VERSION}; rebuild it")
    return manifest


def _item_json(item: GalleryItem) -> dict[str, Any]:
    raw = asdict(item)
    if raw["metadata"] is None:
        del raw["metadata"]  # MNIST items carry none: keep items.jsonl lean
    return raw


def similarity(distance: float, scale: float) -> float:
    """A similarity in (0, 1]: 1 for an identical code, 0.5 at the gallery's typical neighbour distance."""
    return 1.0 / (1.0 + distance / scale) if scale > 0 else (1.0 if distance == 0 else 0.0)


def typical_neighbour_distance(index: VectorIndex, codes: np.ndarray, sample: int = 1000, k: int = 10) -> float:
    """Median distance from a sample of gallery codes to their k-th nearest other code."""
    if len(codes) <= 1:
        return 1.0
    rows = np.random.default_rng(0).choice(len(codes), size=min(sample, len(codes)), replace=False)
    depth = min(k + 1, len(codes))  # +1: each code finds itself first
    distances, _ = index.search(codes[rows], depth)
    return float(np.median(distances[:, -1])) or 1.0


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as stream:
        np.save(stream, array, allow_pickle=False)


@dataclass(frozen=True)
class LatentProjection:
    """A 2-D PCA of a gallery's codes: a sample of points and the map that places any code."""

    rows: np.ndarray  # (S,) positions of the sampled items
    labels: np.ndarray  # (S,) their labels
    points: np.ndarray  # (S, 2)
    mean: np.ndarray  # (dim,)
    components: np.ndarray  # (2, dim)
    explained: np.ndarray  # (2,) share of the variance on each axis


def latent_projection(codes: np.ndarray, labels: np.ndarray, sample: int = 3000, seed: int = 0) -> LatentProjection:
    """Project codes onto their top two principal directions; keep a fixed random sample of points."""
    pca = PCA.fit(codes, 2)
    rows = np.sort(np.random.default_rng(seed).choice(len(codes), size=min(sample, len(codes)), replace=False))
    return LatentProjection(rows, labels[rows], pca.project(codes[rows]), pca.mean, pca.components.T, pca.explained)
