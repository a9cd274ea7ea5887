"""The vector index behind the gallery: a small interface and its FAISS implementation.

`app/` and `index.gallery` only use `VectorIndex`; a second backend (another library, a
remote service) implements the same five methods and is chosen in `open_backend`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from models.storage import atomic_write_with


class VectorIndex(Protocol):
    """Exact or approximate Euclidean nearest-neighbour search over codes with int64 ids."""

    kind: str

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        ...

    def __len__(self) -> int: ...

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add float32 vectors (N, dim) under the given int64 ids."""
        ...

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Euclidean distances (Q, k) and ids (Q, k) of the nearest vectors among `allowed_ids`
        (all when None), so a filter still returns k results when k qualify; id -1 pads."""
        ...

    def vector(self, item_id: int) -> np.ndarray:
        """The stored vector of one id."""
        ...

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically."""
        ...

    def vectors(self) -> np.ndarray:
        """Every stored vector (N, dim), in the order they were added."""
        ...


class FaissFlatIndex:
    """Exact search: FAISS `IndexFlatL2` under an `IndexIDMap2` so ids are ours, not positions."""

    kind = "Flat"

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def empty(cls, dim: int) -> FaissFlatIndex:
        """A new, empty index of `dim`-dimensional vectors."""
        return cls(faiss.IndexIDMap2(faiss.IndexFlatL2(dim)))

    @classmethod
    def load(cls, path: Path) -> FaissFlatIndex:
        """Read an index written by `save`."""
        return cls(faiss.read_index(str(path)))

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self._index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
        )

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        params = None
        if allowed_ids is not None:
            # Filtering inside the search (not after it): FAISS skips other ids while scanning.
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        squared, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        # FAISS returns squared L2; people read Euclidean distances. Padding rows carry huge values.
        distances = np.sqrt(np.maximum(squared, 0.0))
        return distances, ids

    def save(self, path: Path) -> None:
        atomic_write_with(path, lambda temp: faiss.write_index(self._index, str(temp)))

    def vector(self, item_id: int) -> np.ndarray:
        return np.asarray(self._index.reconstruct(int(item_id)), dtype=np.float32)

    def vectors(self) -> np.ndarray:
        inner = faiss.downcast_index(self._index.index)  # type: ignore[attr-defined]
        return inner.reconstruct_n(0, inner.ntotal)


def open_backend(kind: str, path: Path) -> VectorIndex:
    """Load an index of the named kind from `path`."""
    if kind == FaissFlatIndex.kind:
        return FaissFlatIndex.load(path)
    raise ValueError(f"unknown index kind {kind!r}; known: {FaissFlatIndex.kind}")


def set_search_threads(threads: int) -> None:
    """Set FAISS's OpenMP threads (one was fastest for batched 16-d search on a 2-core box)."""
    faiss.omp_set_num_threads(threads)
