"""The vector index behind the gallery: a small interface and its FAISS implementation.

`app/` and `index.gallery` only use `VectorIndex`; a second backend (another library, a
remote service) implements the same methods and is chosen in `open_backend`.

FAISS index types, chosen by an `IndexSpec` (settings `AESEEK_INDEX_*`):

* `Flat`: exact search (`IndexFlatL2`), the default.
* `IVF`: inverted lists over `nlist` k-means cells (IVF-Flat); `nprobe` cells are scanned.
* `HNSW`: a navigable small-world graph with `hnsw_m` links; `ef_search` candidates per query.
* `IVFPQ`: inverted lists with product-quantised vectors of `pq_bytes` bytes.

Flat and HNSW sit under an `IndexIDMap2` so ids are ours; IVF indexes store ids themselves.
IVF and IVFPQ are trained (k-means, PQ codebooks) on a sample of the vectors first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import faiss
import numpy as np

from models.errors import ConflictError
from models.storage import atomic_write_with


class IndexOperationError(ConflictError):
    """The index type cannot do what was asked."""


IndexKind = Literal["Flat", "IVF", "HNSW", "IVFPQ"]
INDEX_KINDS: tuple[IndexKind, ...] = get_args(IndexKind)
TRAINING_SAMPLE = 200_000


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

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids, in their order."""
        ...

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically."""
        ...

    def copy(self) -> VectorIndex:
        """An independent copy (mutate the copy, swap it in: searches never see a half-done change)."""
        ...

    def remove(self, ids: np.ndarray) -> None:
        """Remove vectors by id."""
        ...


@dataclass(frozen=True)
class IndexSpec:
    """Which FAISS index to build and its tuning knobs."""

    kind: IndexKind = "Flat"
    nlist: int = 1024
    nprobe: int = 16
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    pq_bytes: int = 8
    # Label-free re-ranking (index/rerank.py): 0 is off; else the neighbours of database-side
    # augmentation at build time and of query expansion at search time.
    rerank_neighbours: int = 0

    def factory(self, count: int) -> str:
        """The faiss.index_factory string for `count` vectors (nlist capped to what k-means can fit)."""
        nlist = max(1, min(self.nlist, count // 39))  # FAISS wants >= 39 training points per cell
        return {
            "Flat": "IDMap2,Flat",
            "IVF": f"IVF{nlist},Flat",
            "HNSW": f"IDMap2,HNSW{self.hnsw_m}",
            "IVFPQ": f"IVF{nlist},PQ{self.pq_bytes}",
        }[self.kind]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return asdict(self)


class FaissIndex:
    """Any of the FAISS index types above, with ids, search-time knobs and atomic saves."""

    def __init__(self, index: faiss.Index, spec: IndexSpec) -> None:
        self._index = index
        self.spec = spec
        self.kind: str = spec.kind
        self._apply_search_knobs()
        if spec.kind in ("IVF", "IVFPQ"):
            # Finding a vector by id needs a direct map. A hash table, set once here, allows adds and
            # removes on copies later (an array map refuses both) and is never built lazily by
            # concurrent readers.
            ivf = faiss.extract_index_ivf(index)
            if ivf.direct_map.type != faiss.DirectMap.Hashtable:
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)

    @classmethod
    def build(cls, spec: IndexSpec, vectors: np.ndarray, ids: np.ndarray, seed: int = 0) -> FaissIndex:
        """An index of `spec`'s kind over the vectors, trained on a sample of them when needed."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = faiss.index_factory(vectors.shape[1], spec.factory(len(vectors)), faiss.METRIC_L2)
        if spec.kind == "HNSW":
            _hnsw(index).efConstruction = spec.ef_construction
        if spec.kind == "IVFPQ":
            # Polysemous codes (an annealing step FAISS runs by default for 8-bit PQ) take minutes
            # to train and are only used by polysemous search, which aeseek does not use.
            faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
        if not index.is_trained:
            rows = np.random.default_rng(seed).choice(len(vectors), min(TRAINING_SAMPLE, len(vectors)), replace=False)
            index.train(vectors[np.sort(rows)])
        built = cls(index, spec)
        built.add(vectors, ids)
        return built

    @classmethod
    def load(cls, path: Path, spec: IndexSpec) -> FaissIndex:
        """Read an index written by `save`."""
        return cls(faiss.read_index(str(path)), spec)

    def _apply_search_knobs(self) -> None:
        if self.spec.kind in ("IVF", "IVFPQ"):
            faiss.extract_index_ivf(self._index).nprobe = self.spec.nprobe
        elif self.spec.kind == "HNSW":
            _hnsw(self._index).efSearch = self.spec.ef_search

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self._index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
        )

    def _parameters(self, allowed_ids: np.ndarray | None) -> faiss.SearchParameters | None:
        if allowed_ids is None:
            return None
        # Filtering inside the search (not after it): FAISS skips other ids while scanning.
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
        if self.spec.kind in ("IVF", "IVFPQ"):
            return faiss.SearchParametersIVF(sel=selector, nprobe=self.spec.nprobe)
        if self.spec.kind == "HNSW":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=self.spec.ef_search)
        return faiss.SearchParameters(sel=selector)

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        params = self._parameters(allowed_ids)
        squared, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        # FAISS returns squared L2; people read Euclidean distances. Padding rows carry huge values.
        distances = np.sqrt(np.maximum(squared, 0.0))
        return distances, ids

    def vector(self, item_id: int) -> np.ndarray:
        return np.asarray(self._index.reconstruct(int(item_id)), dtype=np.float32)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64)), dtype=np.float32)

    def save(self, path: Path) -> None:
        atomic_write_with(path, lambda temp: faiss.write_index(self._index, str(temp)))

    def copy(self) -> FaissIndex:
        return FaissIndex(faiss.clone_index(self._index), self.spec)

    def remove(self, ids: np.ndarray) -> None:
        if self.spec.kind == "HNSW":
            raise IndexOperationError("an HNSW index cannot remove vectors; rebuild the gallery to drop items")
        self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def serialized_bytes(self) -> int:
        """Size of the index when written out (memory per vector, roughly)."""
        return int(faiss.serialize_index(self._index).size)


def _hnsw(index: faiss.Index) -> Any:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    return faiss.downcast_index(inner).hnsw


def open_backend(kind: str, path: Path, params: dict[str, Any] | None = None) -> VectorIndex:
    """Load an index of the named kind from `path`, with its saved knobs."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}; known: {', '.join(INDEX_KINDS)}")
    spec = IndexSpec(**{**(params or {}), "kind": kind})
    return FaissIndex.load(path, spec)


def set_search_threads(threads: int) -> None:
    """Set FAISS's OpenMP threads (one was fastest for batched 16-d search on a 2-core box)."""
    faiss.omp_set_num_threads(threads)
