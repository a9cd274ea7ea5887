"""What the running service holds: settings, workspace, the search snapshot, loaded models."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal
from weakref import WeakKeyDictionary

import numpy as np
import torch
from PIL import Image

from app.services.batching import MicroBatcher
from app.services.galleries import open_gallery_store
from app.services.retention import size_of
from app.services.search import PreparedQuery, SearchOutcome, SearchService, Snapshot
from app.services.workspace import Workspace
from app.settings import Settings, batcher_decodes, decode_threads, index_spec
from index.backend import set_search_threads
from index.gallery import Gallery, GalleryItem, LatentProjection, latent_projection
from models.base import Autoencoder
from models.checkpoints import ModelRecord, load_model, read_record
from models.data.preprocessing import DecodeLimits, decode_image
from models.errors import AeseekError, ConflictError, DiskBudgetError, NotFoundError, NotReadyError, OverloadedError

logger = logging.getLogger("aeseek")

LOADED_MODELS = 4
# Longest a decode waits for a slot before the request is shed (the queue is bounded too).
DECODE_WAIT_S = 10.0
KEPT_MODEL_PICTURES = 32
# Unless the micro-batcher decodes them, uploads up to this many pixels are decoded on the event
# loop (a 28x28 PNG takes ~0.1 ms), larger ones in the decode pool.
INLINE_DECODE_PIXELS = 128 * 128
# When it decodes (settings.batcher_decodes), the micro-batcher decodes uploads up to this many
# pixels itself (scans and crops: 2-6 ms at 640x640, noisy WebP the worst); larger ones (phone
# photos: 7-18 ms) are decoded in the decode pool first, so one never holds up a batch of small ones.
BATCHED_DECODE_PIXELS = 640 * 640
# Nor are files over this size, whatever their pixels (a progressive JPEG's scans cost by the byte).
BATCHED_DECODE_BYTES = 512 * 1024


def configure_threads(settings: Settings) -> None:
    """Thread counts for query-time work (see the README's performance notes)."""
    torch.set_num_threads(settings.torch_threads)
    set_search_threads(settings.faiss_threads)


class Runtime:
    """The service's state; one per app, created by the lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace = Workspace(settings.data_dir, settings.mnist_source)
        self.galleries = open_gallery_store(settings, self.workspace, self.ensure_room)
        self.limits = DecodeLimits(max_pixels=settings.max_image_pixels, max_bytes=settings.max_upload_bytes)
        self.search: SearchService | None = None
        self.not_ready_reason: str | None = "starting"
        self._activation = threading.Lock()
        self._models: OrderedDict[str, tuple[Autoencoder, ModelRecord]] = OrderedDict()
        self._models_lock = threading.Lock()
        self._projections: WeakKeyDictionary[Gallery, LatentProjection] = WeakKeyDictionary()
        self._gallery_pictures: WeakKeyDictionary[Gallery, dict[str, bytes]] = WeakKeyDictionary()
        self._model_pictures: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.batcher: MicroBatcher | None = None
        self._seen_pointer: bytes | None = None  # the store's state when the served snapshot was made
        self._searches = threading.BoundedSemaphore(settings.max_concurrent_searches)
        self._decode_threads = decode_threads(settings)  # worked out once, not per upload
        self._decodes = threading.BoundedSemaphore(self._decode_threads)
        self._waiting_decodes = 0
        self._waiting_lock = threading.Lock()
        # Query decodes too large for the event loop (see _decode_in_pool); batches and pictures,
        # which run in the framework's thread pool, take `admitted("decode")` slots instead.
        self._decode_pool = ThreadPoolExecutor(self._decode_threads, thread_name_prefix="aeseek-decode")
        self._batched_decode_pixels = BATCHED_DECODE_PIXELS if batcher_decodes(settings) else 0
        self._queued_decodes = 0  # on the event loop: in the decode pool or the batcher

    @contextmanager
    def admitted(self, kind: Literal["search", "decode"]) -> Iterator[None]:
        """Hold one of the limited slots of `kind` for the block, or refuse with OverloadedError.

        A search is refused at once when AESEEK_MAX_CONCURRENT_SEARCHES are in flight. A decode
        waits for one of AESEEK_MAX_CONCURRENT_DECODES slots (blocking its worker thread) while
        fewer than AESEEK_MAX_WAITING_DECODES others wait, and is refused beyond: a bounded queue
        keeps memory and latency bounded under a flood (a client told to retry in a second costs
        nothing, a thousand queued 4 MP decodes cost gigabytes) without refusing ordinary bursts.
        """
        if kind == "search":
            if not self._searches.acquire(blocking=False):
                raise OverloadedError(
                    "the server is at its limit of concurrent searches (AESEEK_MAX_CONCURRENT_SEARCHES); retry shortly"
                )
            try:
                yield
            finally:
                self._searches.release()
            return
        acquired = self._decodes.acquire(blocking=False)
        if not acquired:  # every slot is taken: wait in the bounded queue
            self._reserve_decode()
            try:
                acquired = self._decodes.acquire(timeout=DECODE_WAIT_S)
            finally:
                with self._waiting_lock:
                    self._waiting_decodes -= 1
        if not acquired:
            raise OverloadedError(f"no decode slot came free within {DECODE_WAIT_S:g} s; retry shortly")
        try:
            yield
        finally:
            self._decodes.release()

    def _reserve_decode(self) -> None:
        """Count one more decode waiting for a slot, or refuse when AESEEK_MAX_WAITING_DECODES already wait."""
        with self._waiting_lock:
            if self._waiting_decodes >= self.settings.max_waiting_decodes:
                raise OverloadedError(
                    "the server is at its limit of waiting decodes (AESEEK_MAX_WAITING_DECODES); retry shortly"
                )
            self._waiting_decodes += 1

    def start_batching(self) -> None:
        """Start the micro-batcher when the settings ask for it."""
        if self.settings.batching and self.batcher is None:
            self.batcher = MicroBatcher(
                self.require_search, self.settings.batch_max_size, self.settings.batch_max_wait_ms
            )

    def stop_batching(self) -> None:
        """Stop the micro-batcher after the queries it holds, and the decode threads."""
        if self.batcher is not None:
            self.batcher.close()
            self.batcher = None
        self._decode_pool.shutdown(wait=False, cancel_futures=True)

    async def search_upload(self, data: bytes, k: int, label: int | None = None) -> SearchOutcome:
        """Search with an upload: decode and preprocess it, then encode and search, timing each stage.

        Small images (the usual query) are decoded on the event loop, larger ones in the decode
        pool, so that the loop never stalls on a big decode. With the micro-batcher on (unfiltered
        queries) the batcher encodes and searches; when it decodes too (`batcher_decodes`: a core
        per worker), the loop reads only the header of uploads of up to BATCHED_DECODE_PIXELS and
        the batcher's thread decodes them with the rest of its batch. Without the batcher the
        search runs in a worker thread. Pillow, torch and FAISS release the GIL while they compute.
        """
        with self.admitted("search"):
            return await self._search_upload(data, k, label)

    async def _search_upload(self, data: bytes, k: int, label: int | None) -> SearchOutcome:
        service = self.require_search()
        started = time.perf_counter()
        image = service.open(data)
        pixels = image.width * image.height
        if self.batcher is None or label is not None:
            prepared = await self._prepare(service, image, started)
            [outcome] = await asyncio.to_thread(service.search_images, [prepared.query], k, label)
            return outcome.after(prepared.timings_ms)
        submitted = time.perf_counter()
        in_batch = pixels <= self._batched_decode_pixels and len(data) <= BATCHED_DECODE_BYTES
        if in_batch:  # uploads the loop would have decoded itself are not counted as queued decodes
            with self._queued_decode() if pixels > INLINE_DECODE_PIXELS else nullcontext():
                outcome = await self.batcher.submit_async(image, k)
            earlier: dict[str, float] = {}
        else:
            prepared = await self._prepare(service, image, started)
            submitted, earlier = time.perf_counter(), prepared.timings_ms
            outcome = await self.batcher.submit_async(prepared.query, k)
        waited = (time.perf_counter() - submitted) * 1000.0 - sum(outcome.timings_ms.values())
        if in_batch:  # the header, read here before the batch decoded it, is part of its decode
            outcome.timings_ms["decode"] += (submitted - started) * 1000.0
        return outcome.after(earlier, queue=max(waited, 0.0))

    async def _prepare(self, service: SearchService, image: Image.Image, started: float) -> PreparedQuery:
        if image.width * image.height <= INLINE_DECODE_PIXELS:
            return service.prepare_opened(image, started)
        return await self._decode_in_pool(service, image, started)

    async def _decode_in_pool(self, service: SearchService, image: Image.Image, started: float) -> PreparedQuery:
        with self._queued_decode():
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._decode_pool, service.prepare_opened, image, started)

    @contextmanager
    def _queued_decode(self) -> Iterator[None]:
        """Count one upload queued for decoding (in the decode pool or the batcher), or refuse it with
        OverloadedError beyond `decode_threads` + AESEEK_MAX_WAITING_DECODES."""
        # Counted here, on the event loop, so the bound is exact (asyncio's executor queues without one).
        if self._queued_decodes >= self._decode_threads + self.settings.max_waiting_decodes:
            raise OverloadedError(
                "the server is at its limit of waiting decodes (AESEEK_MAX_WAITING_DECODES); retry shortly"
            )
        self._queued_decodes += 1
        try:
            yield
        finally:
            self._queued_decodes -= 1

    def decode_upload(self, data: bytes) -> Image.Image:
        """Decode an upload within the limits, holding a decode slot (pictures of a model)."""
        with self.admitted("decode"):
            return decode_image(data, self.limits)

    def load_active(self) -> None:
        """Load the active model and its gallery; on failure stay not-ready with the reason."""
        for path in self.workspace.sweep_temporary_files():
            logger.warning("removed %s, left by an interrupted write", path)
        try:
            self._seen_pointer = self.galleries.state()
            model, record, gallery = self.galleries.load_active()
        except AeseekError as error:
            self.not_ready_reason = str(error)
            logger.warning("not ready: %s", error)
            return
        self._remember(record.version, model, record)
        self.search = SearchService(Snapshot.of(model, record, gallery), self.limits)
        self.not_ready_reason = None
        logger.info("loaded model %s (%s) and a gallery of %d images", record.version, record.variant, len(gallery))

    def follow_active(self) -> bool:
        """Catch up with an activation or gallery change another process made (another serving worker or
        replica, the CLI): load what the store now names active and swap it in. True when something changed."""
        try:
            if self.galleries.state() == self._seen_pointer:
                return False  # the usual case: one small file read, or one Milvus call
        except NotReadyError as error:  # Milvus unreachable: keep serving what is loaded, try again later
            logger.warning("cannot check for changes made elsewhere: %s", error)
            return False
        # Under the write lock: the writer cannot remove the gallery this process is about to load.
        with self._activation, self.workspace.write_lock():
            return self._catch_up()

    def _catch_up(self) -> bool:
        # Called with self._activation held (and, before a change, the data directory's write lock).
        state = self.galleries.state()
        if state == self._seen_pointer:
            return False
        try:
            model, record, gallery = self.galleries.load_active()
        except AeseekError as error:
            logger.warning("active.json changed but does not load (%s): serving what was loaded", error)
            self._seen_pointer = state
            return False
        except Exception:  # a file removed under us, say: keep serving, try again on the next change check
            logger.exception("following active.json failed; serving what was loaded")
            return False
        self._remember(record.version, model, record)
        snapshot = Snapshot.of(model, record, gallery)
        if self.search is None:
            self.search = SearchService(snapshot, self.limits)
        else:
            self.search.swap(snapshot)
        self._seen_pointer, self.not_ready_reason = state, None
        logger.info("following a change made elsewhere: model %s, %d images", record.version, len(gallery))
        return True

    def active_model(self) -> tuple[str, str, int] | None:
        """The version and variant of the model answering searches and its gallery's size; None before one."""
        if self.search is None:
            return None
        snapshot = self.search.snapshot
        return snapshot.record.version, snapshot.record.variant, len(snapshot.gallery)

    def require_search(self) -> SearchService:
        """The search service, or NotReadyError saying why there is none yet."""
        if self.search is None:
            raise NotReadyError(self.not_ready_reason or "no model and gallery loaded yet")
        return self.search

    def model(self, version: str) -> tuple[Autoencoder, ModelRecord]:
        """A trained model by version, loaded once and kept among the last few used."""
        directory = self._model_dir(version)
        with self._models_lock:
            if version in self._models:
                self._models.move_to_end(version)
                return self._models[version]
        model, record = load_model(directory)
        self._remember(version, model, record)
        return model, record

    def _model_dir(self, version: str) -> Path:
        if not version.isalnum() or not (self.workspace.models_dir / version / "model.json").is_file():
            raise NotFoundError(f"no trained model with version {version!r}; see GET /api/v1/models")
        return self.workspace.models_dir / version

    def add_to_gallery(
        self, uploads: list[bytes], labels: list[int], metadata: list[dict[str, Any] | None]
    ) -> list[GalleryItem]:
        """Preprocess and encode uploads, add them to the active gallery, save it, swap it in."""
        with self.admitted("decode"):  # decoded first, so a long activation elsewhere holds no decode slot
            service = self.require_search()
            queries = np.stack([service.prepare_upload(data).query for data in uploads])  # a bad file: nothing added
        # One change at a time, never during an activation, in this process and in any other.
        with self._activation, self.workspace.write_lock():
            self._catch_up()
            service = self.require_search()
            snapshot = service.snapshot
            codes = snapshot.embed(torch.from_numpy(queries)).numpy()
            gallery, added = snapshot.gallery.with_added(codes, labels, queries, metadata)
            self._switch_gallery(service, replace(snapshot, gallery=gallery))
            return added

    def remove_from_gallery(self, item_id: int) -> None:
        """Remove one item from the active gallery, save it, swap it in."""
        with self._activation, self.workspace.write_lock():
            self._catch_up()
            service = self.require_search()
            snapshot = service.snapshot
            if snapshot.gallery.item(item_id) is None:
                raise NotFoundError(f"no gallery item with id {item_id}")
            self._switch_gallery(service, replace(snapshot, gallery=snapshot.gallery.without(item_id)))

    def _switch_gallery(self, service: SearchService, snapshot: Snapshot) -> None:
        # The store keeps the change (a new gallery directory and an atomic pointer write, or
        # Milvus's own write), then searches see it.
        self.galleries.commit(snapshot.gallery)
        self._seen_pointer = self.galleries.state()
        service.swap(snapshot)

    def latent_projection(self, snapshot: Snapshot) -> LatentProjection:
        """The 2-D PCA of a snapshot's gallery codes, computed once per gallery."""
        gallery = snapshot.gallery
        with self._models_lock:
            cached = self._projections.get(gallery)
        if cached is None:
            codes, items = gallery.all_codes()
            cached = latent_projection(codes, np.array([item.label for item in items]))
            with self._models_lock:
                self._projections[gallery] = cached  # dropped with the gallery
        return cached

    def gallery_picture(self, gallery: Gallery, name: str, render: Callable[[], bytes]) -> bytes:
        """A picture of a gallery (the latent map), drawn once per gallery: reads cost no plotting."""
        with self._models_lock:
            cached = self._gallery_pictures.setdefault(gallery, {}).get(name)
        if cached is None:
            cached = render()
            with self._models_lock:
                self._gallery_pictures.setdefault(gallery, {})[name] = cached
        return cached

    def model_picture(self, version: str, name: str, render: Callable[[], bytes]) -> bytes:
        """A picture of a saved model (its loss curve), drawn once and kept among the last few drawn."""
        key = (version, name)
        with self._models_lock:
            cached = self._model_pictures.get(key)
        if cached is None:
            cached = render()
            with self._models_lock:
                self._model_pictures[key] = cached
                while len(self._model_pictures) > KEPT_MODEL_PICTURES:
                    self._model_pictures.popitem(last=False)
        return cached

    def delete_model(self, version: str) -> None:
        """Delete a trained model and its galleries; refused for the model answering searches."""
        with self._activation, self.workspace.write_lock():
            self._catch_up()
            self._model_dir(version)
            if self.search is not None and self.search.snapshot.record.version == version:
                raise ConflictError(f"model {version} answers searches; activate another model before deleting it")
            self.galleries.forget_model(version)
            with self._models_lock:
                self._models.pop(version, None)
                for key in [key for key in self._model_pictures if key[0] == version]:
                    del self._model_pictures[key]

    def ensure_room(self, extra_bytes: int) -> None:
        """DiskBudgetError when writing `extra_bytes` more would pass AESEEK_DISK_BUDGET_BYTES."""
        budget = self.settings.disk_budget_bytes
        if budget and size_of(self.workspace.root) + extra_bytes > budget:
            raise DiskBudgetError(
                f"this write of about {extra_bytes:,} bytes would take the data directory past its budget of "
                f"{budget:,} bytes (AESEEK_DISK_BUDGET_BYTES); delete models or run `aeseek gc`"
            )

    def record(self, version: str) -> ModelRecord:
        """A trained model's description, read without loading its weights."""
        return read_record(self._model_dir(version))

    def _remember(self, version: str, model: Autoencoder, record: ModelRecord) -> None:
        with self._models_lock:
            self._models[version] = (model, record)
            while len(self._models) > LOADED_MODELS:
                self._models.popitem(last=False)

    def activate(self, version: str) -> Snapshot:
        """Answer searches with `version`: reuse or build its gallery, then swap atomically.

        Searches in flight finish on the old snapshot; activations run one at a time.
        """
        with self._activation, self.workspace.write_lock():
            self._catch_up()
            model, record = self.model(version)
            current = self.search.snapshot.gallery if self.search is not None else None
            gallery = self.galleries.activate(version, index_spec(self.settings), current)
            self._seen_pointer = self.galleries.state()
            snapshot = Snapshot.of(model, record, gallery)
            if self.search is None:
                self.search = SearchService(snapshot, self.limits)
            else:
                self.search.swap(snapshot)
            self.not_ready_reason = None
            logger.info("activated model %s (%s)", version, record.variant)
            return snapshot
