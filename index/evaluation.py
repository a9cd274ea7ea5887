"""Retrieval quality on a labelled query set: precision@k and mAP@k, relevant = same label."""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np


@dataclass(frozen=True)
class RetrievalScores:
    """Mean precision at 1, 10 and 100 and mean average precision over the top 100."""

    p_at_1: float
    p_at_10: float
    p_at_100: float
    map_at_100: float

    def as_dict(self) -> dict[str, float]:
        """Plain JSON-ready form."""
        return {
            "p_at_1": self.p_at_1,
            "p_at_10": self.p_at_10,
            "p_at_100": self.p_at_100,
            "map_at_100": self.map_at_100,
        }


def exact_neighbours(gallery: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids (Q, k) of the k nearest gallery rows of each query by exact Euclidean distance."""
    index = faiss.IndexFlatL2(gallery.shape[1])
    index.add(np.ascontiguousarray(gallery, dtype=np.float32))
    _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return ids


def scores_from_neighbours(neighbour_labels: np.ndarray, query_labels: np.ndarray) -> RetrievalScores:
    """Scores from the labels (Q, K>=100) of each query's ranked neighbours.

    AP@100 of one query is the mean of precision@i over the ranks i <= 100 that hold a
    relevant item (the usual CBIR/hashing definition, normalised by the relevant items
    retrieved); a query with none scores 0.
    """
    relevant = (neighbour_labels[:, :100] == query_labels[:, None]).astype(np.float64)  # (Q, 100)
    ranks = np.arange(1, relevant.shape[1] + 1)
    precision_at_i = np.cumsum(relevant, axis=1) / ranks
    hits = relevant.sum(axis=1)
    average_precision = np.where(hits > 0, (precision_at_i * relevant).sum(axis=1) / np.maximum(hits, 1), 0.0)
    return RetrievalScores(
        p_at_1=float(relevant[:, :1].mean()),
        p_at_10=float(relevant[:, :10].mean()),
        p_at_100=float(relevant[:, :100].mean()),
        map_at_100=float(average_precision.mean()),
    )


def evaluate_codes(
    gallery_codes: np.ndarray, gallery_labels: np.ndarray, query_codes: np.ndarray, query_labels: np.ndarray
) -> RetrievalScores:
    """Exact-search retrieval scores of query codes against gallery codes."""
    ids = exact_neighbours(gallery_codes, query_codes, k=100)
    return scores_from_neighbours(gallery_labels[ids], query_labels)


def full_ranking_map(
    gallery: np.ndarray, gallery_labels: np.ndarray, queries: np.ndarray, query_labels: np.ndarray, chunk: int = 128
) -> float:
    """Mean average precision over the whole ranking of the gallery (the hashing literature's mAP).

    For a query with R relevant gallery items at ranks r_1 < ... < r_R, AP = (1/R) sum_j j / r_j
    (Euclidean distance; an item tied with others ranks after all of them). Queries are taken
    `chunk` at a time so memory stays at chunk x gallery floats.
    """
    gallery = np.ascontiguousarray(gallery, dtype=np.float32)
    squared = (gallery.astype(np.float64) ** 2).sum(axis=1)
    total = 0.0
    for start in range(0, len(queries), chunk):
        block = np.asarray(queries[start : start + chunk], dtype=np.float32)
        distances = squared[None, :] - 2.0 * (block @ gallery.T).astype(np.float64)  # (C, N), ||q||^2 left out
        ordered = np.sort(distances, axis=1)
        for row, label in zip(range(len(block)), query_labels[start : start + chunk], strict=True):
            relevant = np.sort(distances[row, gallery_labels == label])
            if len(relevant) == 0:
                continue
            ranks = np.searchsorted(ordered[row], relevant, side="right")
            total += float((np.arange(1, len(relevant) + 1) / ranks).mean())
    return total / len(queries)
