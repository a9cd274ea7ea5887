"""Query answering, free of HTTP: preprocess uploads, encode them, search the gallery.

The loaded model and gallery form one immutable `Snapshot`. A search takes the current
snapshot once and uses it throughout, so swapping in a new model never mixes versions
within one answer, and every answer names the version that produced it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from index.gallery import Gallery, Neighbour
from models.base import Autoencoder
from models.checkpoints import ModelRecord
from models.data.preprocessing import DecodeLimits, load_pixels, open_image, to_grayscale, to_mnist
from models.errors import AeseekError, ErrorCode
from models.frozen import Embed, frozen_embed

logger = logging.getLogger("aeseek")


class UnexpectedUploadError(AeseekError):
    """Processing one upload failed in a way no check foresaw (a bug, logged); its batch goes on."""

    code = ErrorCode.INTERNAL_ERROR


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


@dataclass(frozen=True)
class PreparedQuery:
    """An upload decoded and preprocessed: the uint8 (28, 28) query and each stage's time (ms)."""

    query: np.ndarray
    timings_ms: dict[str, float]


@dataclass
class SearchOutcome:
    """Neighbours of one query, the snapshot that found them, and per-stage timings (ms)."""

    snapshot: Snapshot
    query_image: np.ndarray
    code: np.ndarray
    neighbours: list[Neighbour]
    timings_ms: dict[str, float] = field(default_factory=dict)
    batch_size: int = 1

    def after(self, earlier: dict[str, float], **later: float) -> SearchOutcome:
        """This outcome with the stages before encoding (decode, preprocess) first and `later` ones last."""
        self.timings_ms = {**earlier, **self.timings_ms, **later}
        return self


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

    def open(self, data: bytes) -> Image.Image:
        """Read an upload's header within the limits (format, size); no pixel is decoded yet."""
        return open_image(data, self.limits)

    def prepare_upload(self, data: bytes) -> PreparedQuery:
        """Decode and preprocess an upload into the query the model takes."""
        started = time.perf_counter()
        return self.prepare_opened(self.open(data), started)

    def prepare_opened(self, image: Image.Image, started: float) -> PreparedQuery:
        """`prepare_upload` from an image whose header `open` has read (at `started`)."""
        image = load_pixels(image)
        decoded = time.perf_counter()
        query = to_mnist(to_grayscale(image))
        return PreparedQuery(query, {"decode": _ms_between(started, decoded), "preprocess": _ms_since(decoded)})

    def prepare_alone(self, upload: bytes | Image.Image) -> PreparedQuery | AeseekError:
        """One upload of several (raw, or opened just now): prepared, or the error that fails it alone."""
        try:
            if isinstance(upload, bytes):
                return self.prepare_upload(upload)
            return self.prepare_opened(upload, time.perf_counter())
        except AeseekError as error:
            return error
        except Exception as error:  # a bug on one file must not fail the others: that file is a 500
            logger.exception("preparing one upload of a batch failed")
            return UnexpectedUploadError(f"this file could not be processed ({type(error).__name__})")

    def search_uploads(
        self, uploads: list[bytes], k: int, label: int | None = None
    ) -> list[SearchOutcome | AeseekError]:
        """Several uploads: each prepared alone (a bad one fails alone), the rest searched as one batch."""
        prepared = [self.prepare_alone(data) for data in uploads]
        good = [item for item in prepared if isinstance(item, PreparedQuery)]
        outcomes = iter(self.search_images([item.query for item in good], k, label) if good else [])
        return [item if isinstance(item, AeseekError) else next(outcomes).after(item.timings_ms) for item in prepared]

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
