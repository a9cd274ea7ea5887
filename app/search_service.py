"""Query answering, free of HTTP: preprocess uploads, encode them, search the gallery.

The loaded model and gallery form one immutable `Snapshot`. A search takes the current
snapshot once and uses it throughout, so swapping in a new model never mixes versions
within one answer, and every answer names the version that produced it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from index.gallery import Gallery, Neighbour
from models.base import Autoencoder
from models.checkpoints import ModelRecord
from models.preprocessing import DecodeLimits, decode_image, to_grayscale, to_mnist


@dataclass(frozen=True)
class Snapshot:
    """A model and the gallery its codes built, used together."""

    model: Autoencoder
    record: ModelRecord
    gallery: Gallery


@dataclass
class SearchOutcome:
    """Neighbours of one query, the snapshot that found them, and per-stage timings (ms)."""

    snapshot: Snapshot
    query_image: np.ndarray
    code: np.ndarray
    neighbours: list[Neighbour]
    timings_ms: dict[str, float] = field(default_factory=dict)


class SearchService:
    """Answers searches against the current snapshot; `swap` replaces it atomically."""

    def __init__(self, snapshot: Snapshot, limits: DecodeLimits) -> None:
        self._snapshot = snapshot
        self.limits = limits

    @property
    def snapshot(self) -> Snapshot:
        """The model and gallery answering now."""
        return self._snapshot

    def swap(self, snapshot: Snapshot) -> None:
        """Answer later searches with `snapshot`; searches in flight finish on the old one."""
        self._snapshot = snapshot  # a single reference assignment is atomic in CPython

    def search_upload(self, data: bytes, k: int) -> SearchOutcome:
        """Decode and preprocess an uploaded image, then search with it."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        image = decode_image(data, self.limits)
        timings["decode"] = _ms_since(started)
        started = time.perf_counter()
        query = to_mnist(to_grayscale(image))
        timings["preprocess"] = _ms_since(started)
        outcome = self.search_image(query, k)
        outcome.timings_ms = {**timings, **outcome.timings_ms}
        return outcome

    def search_image(self, query: np.ndarray, k: int) -> SearchOutcome:
        """Search with a uint8 (28, 28) MNIST-style image."""
        snapshot = self._snapshot
        started = time.perf_counter()
        code = snapshot.model.embed(torch.from_numpy(query[None])).numpy()
        encode_ms = _ms_since(started)
        started = time.perf_counter()
        neighbours = snapshot.gallery.search(code, k)[0]
        search_ms = _ms_since(started)
        return SearchOutcome(snapshot, query, code[0], neighbours, {"encode": encode_ms, "search": search_ms})

    def reconstruct(self, query: np.ndarray, snapshot: Snapshot | None = None) -> np.ndarray:
        """The model's reconstruction of a uint8 (28, 28) image as uint8 (28, 28)."""
        model = (snapshot or self._snapshot).model
        output = model.reconstruct(torch.from_numpy(query[None]))[0].numpy()
        return np.rint(output * 255.0).astype(np.uint8)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
