"""Relevance feedback, the classic CBIR loop (MARS, Rui et al. 1998), in code space.

A person marks some results relevant and some not; the query moves towards the first and away
from the second (Rocchio 1971: q' = alpha q + beta mean(relevant) - gamma mean(not relevant),
with the usual alpha 1, beta 0.75, gamma 0.15), and the gallery is searched again. Rocchio
worked with cosine similarity, where a query's length does not matter; under the Euclidean
distance of our index it does, so the moved query is divided by alpha + beta - gamma (the
weights of the present terms), which keeps it among the codes. "More like these" is the mean
code of the chosen items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.gallery import Gallery, Neighbour
from models.errors import InvalidRequestError, NotFoundError

ALPHA, BETA, GAMMA = 1.0, 0.75, 0.15


@dataclass(frozen=True)
class Refined:
    """The moved query code and its neighbours (the marked and given items left out)."""

    code: np.ndarray
    neighbours: list[Neighbour]


def codes_of(gallery: Gallery, ids: list[int]) -> np.ndarray:
    """The stored codes (len(ids), dim) of gallery items; NotFoundError names any unknown id."""
    unknown = [item_id for item_id in ids if gallery.item(item_id) is None]
    if unknown:
        raise NotFoundError(f"no gallery items with ids {unknown[:10]}")
    return gallery.codes(np.array(ids, dtype=np.int64)).astype(np.float32)


def rocchio(query: np.ndarray, relevant: np.ndarray, not_relevant: np.ndarray) -> np.ndarray:
    """The moved query, (alpha q + beta mean(relevant) - gamma mean(not relevant)) / (sum of the weights used)."""
    moved, weight = ALPHA * query.astype(np.float32), ALPHA
    if len(relevant):
        moved, weight = moved + BETA * relevant.mean(axis=0), weight + BETA
    if len(not_relevant):
        moved, weight = moved - GAMMA * not_relevant.mean(axis=0), weight - GAMMA
    return (moved / weight).astype(np.float32)


def refine(
    gallery: Gallery,
    k: int,
    *,
    code: np.ndarray | None = None,
    query_ids: list[int] | None = None,
    relevant: list[int] | None = None,
    not_relevant: list[int] | None = None,
    label: int | None = None,
) -> Refined:
    """Search again from a query (a code, or the mean code of gallery items) moved by the marks."""
    relevant, not_relevant, query_ids = relevant or [], not_relevant or [], query_ids or []
    if code is None and not query_ids:
        raise InvalidRequestError("give a query: `code` (from a search with debug=true) or gallery `ids`")
    if code is None:
        code = codes_of(gallery, query_ids).mean(axis=0)  # "more like these": the items' mean code
    if code.shape != (gallery.manifest.dim,):
        raise InvalidRequestError(f"`code` has {code.size} values; this gallery's codes have {gallery.manifest.dim}")
    if not np.isfinite(code).all():
        raise InvalidRequestError("`code` holds a value that is not a finite number")
    empty = np.zeros((0, gallery.manifest.dim), dtype=np.float32)
    moved = rocchio(
        code,
        codes_of(gallery, relevant) if relevant else empty,
        codes_of(gallery, not_relevant) if not_relevant else empty,
    )
    shown = set(query_ids) | set(not_relevant)  # what the person already has or refused
    [found] = gallery.search(moved[None], k + len(shown), label)
    kept = [n for n in found if n.item.id not in shown][:k]
    return Refined(moved, [Neighbour(rank, n.item, n.distance, n.score) for rank, n in enumerate(kept, start=1)])
