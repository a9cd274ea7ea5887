"""Where the served gallery lives: one interface, two backends.

* `FileGalleryStore` (default, one machine): FAISS galleries in the data directory, copy-on-write,
  switched by an atomic write of active.json (see app/services/workspace.py).
* `MilvusGalleryStore` (beyond one machine): one Milvus collection per (model version, gallery),
  switched by a Milvus alias (see index/milvus.py); model files stay in the data directory,
  which replicas share as a volume (they are immutable by version).

Callers hold the workspace's write lock around `activate`, `commit` and `forget_model`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from app.services.retention import size_of
from app.services.workspace import GalleryChoice, Workspace, embed_images
from app.settings import Settings
from index.backend import IndexSpec
from index.gallery import Gallery, GalleryError, GalleryItem, Manifest
from index.milvus import MilvusStore
from models.base import Autoencoder
from models.checkpoints import ModelRecord, load_model
from models.errors import NotReadyError

logger = logging.getLogger("aeseek")
KEPT_COLLECTIONS = 3  # per gallery: the active one and two earlier activations to fall back on


class GalleryStore(Protocol):
    """The served gallery's home: what is active, how to switch it, how a change is kept."""

    def state(self) -> bytes | None:
        """A token that changes whenever any process activates or replaces the gallery."""
        ...

    def active_version(self) -> str | None:
        """The active model version, or None before the first activation."""
        ...

    def load_active(self) -> tuple[Autoencoder, ModelRecord, Gallery]:
        """The active model and its gallery."""
        ...

    def activate(
        self, version: str, spec: IndexSpec, current: Gallery | None, on_batch: Callable[[int], None] | None = None
    ) -> Gallery:
        """Build (or reuse) the gallery of `version` holding `current`'s items (MNIST when None), make it active."""
        ...

    def commit(self, gallery: Gallery) -> None:
        """Keep a gallery changed by an add or a delete, as the active one."""
        ...

    def forget_model(self, version: str) -> None:
        """Delete what the store holds of a model (never the active one)."""
        ...


class FileGalleryStore:
    """FAISS galleries in the data directory (the embedded default)."""

    def __init__(self, workspace: Workspace, choice: GalleryChoice, ensure_room: Callable[[int], None]) -> None:
        self.workspace = workspace
        self.choice = choice
        self.ensure_room = ensure_room
        self.directory: Path | None = None  # where the served gallery is saved

    def state(self) -> bytes | None:
        return self.workspace.pointer_state()

    def active_version(self) -> str | None:
        pointer = self.workspace.active()
        return pointer.model_version if pointer else None

    def load_active(self) -> tuple[Autoencoder, ModelRecord, Gallery]:
        model, record, gallery, self.directory = self.workspace.load_active()
        return model, record, gallery

    def activate(
        self, version: str, spec: IndexSpec, current: Gallery | None, on_batch: Callable[[int], None] | None = None
    ) -> Gallery:
        directory = self.workspace.find_gallery(version, self.choice)
        try:
            if directory is None:
                raise GalleryError(f"no gallery of model {version} yet")
            gallery = Gallery.load(directory, expected_model_version=version)
            if gallery.manifest.index_kind != spec.kind:
                raise GalleryError(f"the saved gallery is {gallery.manifest.index_kind}, {spec.kind} is asked for")
            if gallery.manifest.index_params.get("rerank_neighbours", 0) != spec.rerank_neighbours:
                raise GalleryError("the saved gallery was built with other re-ranking settings")
            if current is not None and [i.id for i in gallery.items] != [i.id for i in current.items]:
                raise GalleryError("the saved gallery's items differ from the gallery being served")
        except GalleryError:
            self.ensure_room(size_of(self.directory) if self.directory else 0)
            source = (current.images, current.items) if current is not None else None
            next_id = current.manifest.next_id if current is not None else 0
            directory = self.workspace.build_gallery(
                version, self.choice, on_batch=on_batch, spec=spec, source=source, next_id=next_id
            )
            gallery = Gallery.load(directory, expected_model_version=version)
        self.workspace.activate(version, directory)
        self.directory = directory
        return gallery

    def commit(self, gallery: Gallery) -> None:
        # Copy-on-write: the changed gallery goes to a new directory, then one atomic pointer
        # write makes it the served one, then the replaced directory goes.
        self.ensure_room(size_of(self.directory) if self.directory else 0)
        directory = self.workspace.save_gallery(gallery)
        self.workspace.activate(gallery.manifest.model_version, directory, replaces=self.directory)
        self.directory = directory

    def forget_model(self, version: str) -> None:
        self.workspace.forget_model(version)


class MilvusGalleryStore:
    """Galleries in Milvus, shared by every replica (beyond one machine)."""

    def __init__(self, workspace: Workspace, choice: GalleryChoice, store: MilvusStore) -> None:
        self.workspace = workspace
        self.choice = choice
        self.store = store

    def state(self) -> bytes | None:
        name = self.store.active_collection(self.choice)
        return None if name is None else name.encode()

    def active_version(self) -> str | None:
        name = self.store.active_collection(self.choice)
        manifest = self.store.read_manifest(name, count=False) if name else None
        return manifest.model_version if manifest else None

    def load_active(self) -> tuple[Autoencoder, ModelRecord, Gallery]:
        name = self.store.active_collection(self.choice)
        if name is None:
            raise NotReadyError(
                f"no active gallery in Milvus ({self.store.uri}, alias {self.store.alias(self.choice)}); "
                "run `aeseek train conv --activate` or `aeseek models activate VERSION`"
            )
        gallery = self.store.open(name)
        model, record = load_model(self.workspace.models_dir / gallery.manifest.model_version)
        return model, record, gallery

    def activate(
        self, version: str, spec: IndexSpec, current: Gallery | None, on_batch: Callable[[int], None] | None = None
    ) -> Gallery:
        name = self.build(version, spec, current, on_batch)
        self.make_active(name)
        return self.store.open(name)

    def make_active(self, name: str) -> None:
        """Switch the gallery's alias to a built collection; drop collections older than the kept ones."""
        self.store.switch(self.choice, name)
        active = self.store.active_collection(self.choice)
        older = [other for other in self.store.collections(gallery=self.choice) if other != active]
        for other in older[: max(0, len(older) - (KEPT_COLLECTIONS - 1))]:
            self.store.drop(other)
            logger.info("dropped Milvus collection %s (older than the kept activations)", other)

    def build(
        self, version: str, spec: IndexSpec, current: Gallery | None, on_batch: Callable[[int], None] | None = None
    ) -> str:
        """A new collection of `version`'s codes of the current items (MNIST when None); not yet active."""
        self.store.check_spec(spec)
        model, record = load_model(self.workspace.models_dir / version)
        images, items = (current.images, current.items) if current else self.workspace.gallery_source(self.choice)
        codes = embed_images(model, images, on_batch)
        return self.create(record, spec, codes, items, images, current.manifest.next_id if current else 0)

    def create(
        self,
        record: ModelRecord,
        spec: IndexSpec,
        codes: np.ndarray,
        items: list[GalleryItem],
        images: np.ndarray,
        next_id: int,
    ) -> str:
        """A collection of these codes, items and images (the manifest as a FAISS gallery would write it)."""
        manifest = gallery_manifest(record, self.choice, codes, items, images, next_id)
        return self.store.create(manifest, spec, items, np.asarray(codes, np.float32), np.asarray(images, np.uint8))

    def commit(self, gallery: Gallery) -> None:
        pass  # Milvus changed the collection in place; every replica reads it

    def forget_model(self, version: str) -> None:
        active = self.store.active_collection(self.choice)
        for name in self.store.collections(version=version):
            if name != active:
                self.store.drop(name)
        self.workspace.forget_model(version)  # the model's files on the shared volume


def gallery_manifest(
    record: ModelRecord, choice: str, codes: np.ndarray, items: list[GalleryItem], images: np.ndarray, next_id: int = 0
) -> Manifest:
    """The manifest of a gallery of these codes, as a FAISS gallery would write it; an exact in-memory build
    measures its typical neighbour distance (the score's scale)."""
    reference = Gallery.build(
        np.asarray(codes, dtype=np.float32), items, np.asarray(images, dtype=np.uint8), model_version=record.version,
        model_variant=record.variant, gallery=choice, next_id=next_id,
    )  # fmt: skip
    return reference.manifest


def open_gallery_store(settings: Settings, workspace: Workspace, ensure_room: Callable[[int], None]) -> GalleryStore:
    """The store the settings ask for (AESEEK_INDEX_BACKEND)."""
    if settings.index_backend == "milvus":
        return MilvusGalleryStore(workspace, settings.gallery, milvus_store(settings))
    return FileGalleryStore(workspace, settings.gallery, ensure_room)


def milvus_store(settings: Settings) -> MilvusStore:
    """The Milvus of the settings: AESEEK_MILVUS_URI, or a Milvus Lite file in the data directory."""
    uri = settings.milvus_uri or str(Path(settings.data_dir) / "milvus.db")
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    return MilvusStore(uri, settings.milvus_prefix, settings.milvus_token)
