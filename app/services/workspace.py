"""The data directory and the steps the CLI and the service share: train, index, activate.

<root>/mnist/                     official IDX files (cached from whichever source)
<root>/models/<version>/          trained models (see models.checkpoints)
<root>/runs/<run>/                resumable training state of a run
<root>/galleries/<version>-<g>-<n>/  galleries (see index.gallery), never changed once written
<root>/active.json                the model and gallery the service answers with

Every change of a gallery is copy-on-write: the new gallery is written whole into a new
directory (its manifest last), then one atomic, fsync'd write of active.json switches to it,
and only then is the replaced directory removed. A crash at any point leaves active.json
naming a complete gallery: the old one or the new one, never a mix.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from index.backend import IndexSpec
from index.gallery import Gallery, GalleryItem, ModelMismatchError, read_manifest
from models.base import Autoencoder, AutoencoderConfig
from models.checkpoints import ModelRecord, load_model, save_model
from models.data.mnist import MnistSplit, Source, Split, load_mnist
from models.errors import AeseekError, NotReadyError
from models.registry import build_model
from models.storage import atomic_write_json
from models.training.distributed import SINGLE, Shard
from models.training.trainer import ProgressCallback, train

GalleryChoice = Literal["train", "test", "both"]
GALLERY_SPLITS: dict[GalleryChoice, tuple[Split, ...]] = {
    "train": ("train",),
    "test": ("test",),
    "both": ("train", "test"),
}
EMBED_BATCH = 1024
KEPT_ACTIVATIONS = 5
logger = logging.getLogger("aeseek")


@dataclass(frozen=True)
class ActivePointer:
    """Which model version and gallery directory the service uses."""

    model_version: str
    gallery_dir: str


def embed_images(model: Autoencoder, images: np.ndarray, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """Codes (N, code_dim) float32 of uint8 images (N, 28, 28), in batches."""
    codes = []
    for start in range(0, len(images), EMBED_BATCH):
        # A writable copy: gallery images may be memory-mapped, read-only.
        batch = torch.from_numpy(np.array(images[start : start + EMBED_BATCH]))
        codes.append(model.embed(batch).numpy())
        if on_batch is not None:
            on_batch(len(batch))
    return np.concatenate(codes) if codes else np.zeros((0, model.config.code_dim), dtype=np.float32)


class Workspace:
    """One aeseek data directory."""

    def __init__(self, root: Path, mnist_source: Source = "auto") -> None:
        self.root = root
        self.mnist_source: Source = mnist_source
        self._splits: dict[Split, MnistSplit] = {}

    @cached_property
    def models_dir(self) -> Path:
        return self.root / "models"

    @cached_property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @cached_property
    def galleries_dir(self) -> Path:
        return self.root / "galleries"

    @cached_property
    def active_file(self) -> Path:
        return self.root / "active.json"

    def split(self, name: Split) -> MnistSplit:
        """An MNIST split, loaded once per workspace."""
        if name not in self._splits:
            self._splits[name] = load_mnist(name, self.root, self.mnist_source)
        return self._splits[name]

    def train(
        self,
        config: AutoencoderConfig,
        *,
        on_progress: ProgressCallback | None = None,
        run_name: str | None = None,
        max_steps: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        shard: Shard = SINGLE,
    ) -> ModelRecord:
        """Train a model on the training split and save it; a named run resumes where it stopped.

        With a `shard` of several ranks every rank calls this alike; rank 0 writes the run's state and
        the model, and every rank returns its record."""
        images = self.split("train").images
        if config.training.train_subset is not None:
            images = images[: config.training.train_subset]
        model = build_model(config)
        torch.manual_seed(config.training.seed)
        state_dir = self.runs_dir / run_name if run_name else None
        result = train(
            model,
            torch.from_numpy(images),
            on_progress=on_progress,
            state_dir=state_dir,
            should_stop=should_stop,
            max_steps=max_steps,
            shard=shard,
        )
        if not shard.distributed:
            return save_model(model, self.models_dir, history=result.as_dict())
        record = save_model(model, self.models_dir, history=result.as_dict()) if shard.is_main else None
        # Sharing the record is a collective: the other ranks wait here until rank 0 has written the model.
        return ModelRecord(**shard.share_json(record.as_dict() if record is not None else None))

    def gallery_source(self, choice: GalleryChoice) -> tuple[np.ndarray, list[GalleryItem]]:
        """Images and metadata of a gallery made of MNIST splits; ids are consecutive from 0."""
        images: list[np.ndarray] = []
        items: list[GalleryItem] = []
        for split_name in GALLERY_SPLITS[choice]:
            split = self.split(split_name)
            first = len(items)
            items.extend(
                GalleryItem(first + i, split_name, i, int(label)) for i, label in enumerate(split.labels.tolist())
            )
            images.append(split.images)
        return np.concatenate(images), items

    def build_gallery(
        self,
        version: str,
        choice: GalleryChoice = "train",
        on_batch: Callable[[int], None] | None = None,
        spec: IndexSpec | None = None,
        source: tuple[np.ndarray, list[GalleryItem]] | None = None,
        next_id: int = 0,
    ) -> Path:
        """Embed a gallery with a saved model and write it in an index of `spec`'s kind; returns its directory.

        The images are the MNIST splits of `choice`, or `source` (the images and items of a gallery
        that has grown or shrunk through the API, so a new model keeps them, with `next_id` carried
        over so that no id comes back)."""
        model, record = load_model(self.models_dir / version)
        images, items = source if source is not None else self.gallery_source(choice)
        codes = embed_images(model, images, on_batch)
        gallery = Gallery.build(
            codes, items, images, model_version=record.version, model_variant=record.variant, gallery=choice, spec=spec,
            next_id=next_id,
        )  # fmt: skip
        return self.save_gallery(gallery)

    def save_gallery(self, gallery: Gallery) -> Path:
        """Write a gallery into a directory of its own that did not exist before; returns it."""
        manifest = gallery.manifest
        directory = self.galleries_dir / f"{manifest.model_version}-{manifest.gallery}-{uuid.uuid4().hex[:8]}"
        gallery.save(directory)
        return directory

    def find_gallery(self, version: str, choice: str) -> Path | None:
        """The newest complete gallery of a model and MNIST choice, if one was built before."""
        candidates = []
        for directory in self.galleries_dir.glob(f"{version}-{choice}*"):
            try:
                candidates.append((read_manifest(directory).created, directory))
            except AeseekError:
                continue  # partial or corrupt: never reused
        return max(candidates)[1] if candidates else None

    def activate(self, version: str, gallery_dir: Path, replaces: Path | None = None) -> None:
        """Point the service at a model and its gallery (one atomic, fsync'd write).

        Earlier activations are kept as fallbacks, except `replaces`: an older copy of the same
        gallery (before an add or a delete), which is removed once the pointer names the new one.
        """
        pointer = {"model_version": version, "gallery_dir": self._relative(gallery_dir)}
        dropped = self._relative(replaces) if replaces is not None else None
        earlier = [p for p in self._pointers() if p != pointer and p["gallery_dir"] != dropped]
        atomic_write_json(self.active_file, {**pointer, "at": time.time(), "previous": earlier[: KEPT_ACTIVATIONS - 1]})
        if replaces is not None and replaces != gallery_dir:
            shutil.rmtree(replaces, ignore_errors=True)

    def _relative(self, directory: Path) -> str:
        return str(directory.relative_to(self.root))

    def _pointers(self) -> list[dict[str, str]]:
        if not self.active_file.is_file():
            return []
        try:
            raw = json.loads(self.active_file.read_text())
        except ValueError as error:
            raise NotReadyError(f"{self.active_file} is not valid JSON ({error})") from error
        current = {"model_version": raw["model_version"], "gallery_dir": raw["gallery_dir"]}
        return [current, *raw.get("previous", [])]

    @contextmanager
    def write_lock(self, name: str = "write") -> Iterator[None]:
        """Hold the data directory's write lock: one gallery change or activation at a time across every
        process that shares it (serving workers and replicas on a shared volume, the CLI). Another
        `name` is another lock (the first start's training takes "bootstrap")."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{name}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def pointer_state(self) -> bytes | None:
        """active.json as it is on disk now (None before the first activation): changes when anyone activates."""
        try:
            return self.active_file.read_bytes()
        except FileNotFoundError:
            return None

    def pointed_galleries(self) -> list[Path]:
        """The gallery directories active.json names: the served one and its fallbacks (resolved)."""
        return [(self.root / pointer["gallery_dir"]).resolve() for pointer in self._pointers()]

    def forget_model(self, version: str) -> None:
        """Delete a model, its galleries and every activation that names it (never the active one)."""
        pointers = [p for p in self._pointers() if p["model_version"] != version]
        if pointers:
            current, *earlier = pointers
            atomic_write_json(self.active_file, {**current, "at": time.time(), "previous": earlier})
        for directory in self.galleries_dir.glob(f"{version}-*"):
            shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(self.models_dir / version, ignore_errors=True)

    def active(self) -> ActivePointer | None:
        """The active model and gallery, or None before the first activation."""
        pointers = self._pointers()
        return ActivePointer(**pointers[0]) if pointers else None

    def load_active(self) -> tuple[Autoencoder, ModelRecord, Gallery, Path]:
        """The active model, its gallery and the gallery's directory, checked to belong together.

        A corrupt or partial model or gallery is reported and skipped: the previous
        activation that loads cleanly is used instead. A gallery built by another model
        version is a configuration error and is refused, not skipped.
        """
        pointers = self._pointers()
        if not pointers:
            raise NotReadyError("no active model; run `aeseek train conv` and `aeseek index build`, or `aeseek serve`")
        problems = []
        for raw in pointers:
            pointer = ActivePointer(**raw)
            try:
                model, record = load_model(self.models_dir / pointer.model_version)
                gallery = Gallery.load(self.root / pointer.gallery_dir, expected_model_version=record.version)
            except ModelMismatchError:
                raise
            except AeseekError as error:
                logger.error("skipping activation %s: %s", pointer.model_version, error)
                problems.append(f"{pointer.model_version}: {error}")
                continue
            if problems:
                logger.warning("serving the last good activation %s instead", pointer.model_version)
            return model, record, gallery, self.root / pointer.gallery_dir
        raise NotReadyError("no activation loads cleanly: " + "; ".join(problems))

    def active_mismatch(self) -> str | None:
        """Why the active gallery does not belong to the active model, or None (reads manifests only)."""
        pointer = self.active()
        if pointer is None:
            return None
        try:
            manifest = read_manifest(self.root / pointer.gallery_dir)
        except AeseekError:
            return None  # missing or corrupt: reported (and skipped) when the service loads
        if manifest.model_version == pointer.model_version:
            return None
        return (
            f"the active gallery {pointer.gallery_dir} was built with model {manifest.model_version}, but the "
            f"active model is {pointer.model_version}; run `aeseek index build --model {pointer.model_version}`"
        )

    def sweep_temporary_files(self, older_than_s: float = 60.0) -> list[Path]:
        """Delete temporary files left by writes that were killed before their rename."""
        removed = []
        cutoff = time.time() - older_than_s
        for path in self.root.rglob(".*.tmp"):
            if path.is_file() and path.stat().st_mtime <= cutoff:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed
