"""Label-free re-ranking in code space: database-side augmentation and query expansion.

Database-side augmentation (Arandjelovic & Zisserman 2012): each gallery code is replaced by a
weighted mean of itself and its nearest gallery codes, so that the codes of one digit draw
together. Query expansion (Chum et al. 2007): the query is averaged with a weighted mean of its
nearest augmented gallery codes and searched again. Weights fall linearly with rank (the
nearest neighbour weighs most), as in the papers' "weighted" variants.
"""

from __future__ import annotations

import faiss
import numpy as np

from index.backend import VectorIndex


def _weights(count: int) -> np.ndarray:
    return np.arange(count, 0, -1, dtype=np.float32) / count  # (count,) 1, (count-1)/count, ...


def _neighbour_means(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray, count: int) -> np.ndarray:
    _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), count)
    weights = _weights(count)
    return (vectors[ids] * weights[None, :, None]).sum(axis=1) / weights.sum()  # (Q, dim)


def augment_database(codes: np.ndarray, neighbours: int = 10) -> np.ndarray:
    """Each code as the rank-weighted mean of its `neighbours` nearest codes (itself first)."""
    codes = np.ascontiguousarray(codes, dtype=np.float32)
    index = faiss.IndexFlatL2(codes.shape[1])
    index.add(codes)
    return _neighbour_means(index, codes, codes, neighbours).astype(np.float32)


def expand_queries(queries: np.ndarray, augmented: np.ndarray, neighbours: int = 10) -> np.ndarray:
    """Each query averaged with the rank-weighted mean of its `neighbours` nearest augmented codes."""
    index = faiss.IndexFlatL2(augmented.shape[1])
    index.add(np.ascontiguousarray(augmented, dtype=np.float32))
    means = _neighbour_means(index, augmented, queries, neighbours)
    return ((np.asarray(queries, dtype=np.float32) + means) / 2.0).astype(np.float32)


def expand_with_index(queries: np.ndarray, index: VectorIndex, neighbours: int) -> np.ndarray:
    """`expand_queries` against a gallery's own index of augmented codes (ids fetched from the index)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    count = min(neighbours, len(index))
    if count == 0:
        return queries
    _, ids = index.search(queries, count, None)
    weights = np.where(ids >= 0, _weights(count)[None, :], 0.0).astype(np.float32)  # (Q, count)
    vectors = index.vectors(np.where(ids >= 0, ids, ids.max()).ravel()).reshape(len(queries), count, -1)
    means = (vectors * weights[:, :, None]).sum(axis=1) / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return ((queries + means) / 2.0).astype(np.float32)
