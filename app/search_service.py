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
from PIL import Image

from index.gallery import Gallery, Neighbour
from models.base import Autoencoder
from models.checkpoints import ModelRecord
from models.errors import AeseekError
from models.frozen import Embed, frozen_embed
from models.preprocessing import DecodeLimits, load_pixels, open_image, to_grayscale, to_mnist


@dataclass(frozen=True)
class Snapshot:
    """A model and the gallery its codes built, used together, with the model's query encoder."""

    model: Autoencoder
    record: ModelRecord
    gallery: Gallery
    embed: Embed

    @classmethod
    def of(cls, model: Autoencoder, record: ModelRecord, gallery: Gallery) -> Snapshot:
        """A snapshot whose encoder is frozen for serving (see models/frozen.py)."""
        return cls(model, record, gallery, frozen_embed(model))


@dataclass
class SearchOutcome:
    """Neighbours of one query, the snapshot that found them, and per-stage timings (ms)."""

    snapshot: Snapshot
    query_image: np.ndarray
    code: np.ndarray
    neighbours: list[Neighbour]
    timings_ms: dict[str, float] = field(default_factory=dict)
    batch_size: int = 1


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

    def prepare_upload(self, data: bytes) -> tuple[np.ndarray, dict[str, float]]:
        """Decode and preprocess an upload: the uint8 (28, 28) query and the time each stage took."""
        started = time.perf_counter()
        return self.prepare_opened(open_image(data, self.limits), started)

    def prepare_opened(self, image: Image.Image, started: float) -> tuple[np.ndarray, dict[str, float]]:
        """`prepare_upload` from an image whose header `open_image` has read (at `started`)."""
        image = load_pixels(image)
        decoded = time.perf_counter()
        query = to_mnist(to_grayscale(image))
        return query, {"decode": _ms_between(started, decoded), "preprocess": _ms_since(decoded)}

    def search_upload(self, data: bytes, k: int, label: int | None = None) -> SearchOutcome:
        """Decode and preprocess an uploaded image, then search with it."""
        query, timings = self.prepare_upload(data)
        [outcome] = self.search_images([query], k, label)
        outcome.timings_ms = {**timings, **outcome.timings_ms}
        return outcome

    def search_uploads(
        self, uploads: list[bytes], k: int, label: int | None = None
    ) -> list[SearchOutcome | AeseekError]:
        """Several uploads: each prepared alone (a bad one fails alone), the rest searched as one batch."""
        prepared: list[tuple[np.ndarray, dict[str, float]] | AeseekError] = []
        for data in uploads:
            try:
                prepared.append(self.prepare_upload(data))
            except AeseekError as error:
                prepared.append(error)
        good = [item for item in prepared if not isinstance(item, AeseekError)]
        outcomes = iter(self.search_images([query for query, _ in good], k, label)) if good else iter([])
        answers: list[SearchOutcome | AeseekError] = []
        for item in prepared:
            if isinstance(item, AeseekError):
                answers.append(item)
            else:
                outcome = next(outcomes)
                outcome.timings_ms = {**item[1], **outcome.timings_ms}
                answers.append(outcome)
        return answers

    def search_images(self, queries: list[np.ndarray], k: int, label: int | None = None) -> list[SearchOutcome]:
        """Search with uint8 (28, 28) MNIST-style images: one forward pass and one index call for all."""
        snapshot = self._snapshot
        started = time.perf_counter()
        codes = snapshot.embed(torch.from_numpy(np.stack(queries))).numpy()  # (B, code_dim)
        encoded = time.perf_counter()
        neighbours = snapshot.gallery.search(codes, k, label)
        timings = {"encode": _ms_between(started, encoded), "search": _ms_since(encoded)}
        return [
            SearchOutcome(snapshot, query, code, found, dict(timings))
            for query, code, found in zip(queries, codes, neighbours, strict=True)
        ]

    def reconstruct(self, query: np.ndarray, snapshot: Snapshot | None = None) -> np.ndarray:
        """The model's reconstruction of a uint8 (28, 28) image as uint8 (28, 28)."""
        model = (snapshot or self._snapshot).model
        output = model.reconstruct(torch.from_numpy(query[None]))[0].numpy()
        return np.rint(output * 255.0).astype(np.uint8)


def _ms_between(started: float, ended: float) -> float:
    return (ended - started) * 1000.0


def _ms_since(started: float) -> float:
    return _ms_between(started, time.perf_counter())
