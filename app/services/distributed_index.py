"""`aeseek index build --nproc N`: each rank encodes its shard of the gallery and writes it to the store.

Ranks run under torchrun (app/services/distributed.py). Each takes a contiguous share of the
gallery's images, encodes it, and then:

* a Milvus server: inserts its rows into one collection that rank 0 created (every rank writes to
  Milvus directly, so the store's ingest scales with the ranks and machines); rank 0 seals it.
* Milvus Lite (one process may open its file) and FAISS: sends its codes to rank 0, which writes
  the gallery.

Rank 0 also measures the score's distance scale from every code, as a single-process build does,
so both give the same gallery. The caller activates the result under the data directory's lock.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist

from app.services.distributed import rank_failure, record_rank_error, start_ranks, stop_ranks
from app.services.galleries import gallery_manifest, milvus_store
from app.services.workspace import GalleryChoice, Workspace, embed_images
from app.settings import Settings
from index.backend import IndexSpec
from index.gallery import Gallery
from index.milvus import is_server_uri
from models.checkpoints import load_model
from models.training.distributed import Shard, process_group


def build_across(settings: Settings, version: str, choice: GalleryChoice, spec: IndexSpec, nproc: int) -> str:
    """Build the gallery of `version` across `nproc` processes; returns the collection name or gallery directory."""
    threads = max(1, (os.cpu_count() or 1) // nproc)
    with tempfile.TemporaryDirectory(prefix="aeseek-index-ranks-") as scratch:
        directory = Path(scratch)
        request = {"settings": settings.model_dump(mode="json"), "version": version, "choice": choice,
                   "spec": spec.as_dict()}  # fmt: skip
        (directory / "request.json").write_text(json.dumps(request))
        with open(directory / "ranks.log", "wb") as log:
            process = start_ranks(__name__, directory, nproc, threads, log)
            try:
                process.wait()
            finally:
                stop_ranks(process)
        result = directory / "result.json"
        if process.returncode == 0 and result.is_file():
            return str(json.loads(result.read_text())["target"])
        raise rank_failure(directory, process.returncode)


def build_as_rank(settings: Settings, version: str, choice: GalleryChoice, spec: IndexSpec, shard: Shard) -> str:
    """One rank's part; rank 0 returns where the gallery went (other ranks return '')."""
    workspace = Workspace(settings.data_dir, settings.mnist_source)
    model, record = load_model(workspace.models_dir / version)
    images, items = workspace.gallery_source(choice)
    bounds = np.linspace(0, len(items), shard.world_size + 1).astype(int)
    low, high = int(bounds[shard.rank]), int(bounds[shard.rank + 1])
    codes = embed_images(model, images[low:high])
    server = settings.index_backend == "milvus" and is_server_uri(settings.milvus_uri)
    name = ""
    if server:  # every rank writes its own rows into the collection rank 0 made
        store = milvus_store(settings)
        names = [store.create_empty(version, choice, codes.shape[1], spec, len(items)) if shard.is_main else ""]
        dist.broadcast_object_list(names, src=0)
        name = names[0]
        store.insert(name, items[low:high], codes, images[low:high])
    gathered: list[Any] = [None] * shard.world_size if shard.is_main else []
    dist.gather_object(codes, gathered if shard.is_main else None, dst=0)
    if not shard.is_main:
        return ""
    every = np.concatenate(gathered)
    if settings.index_backend != "milvus":
        gallery = Gallery.build(every, items, images, model_version=version, model_variant=record.variant,
                                gallery=choice, spec=spec)  # fmt: skip
        return str(workspace.save_gallery(gallery))
    manifest = gallery_manifest(record, choice, every, items, images)
    if server:
        store.seal(name, manifest, spec)
        return name
    # Milvus Lite: only one process may open its file, so rank 0 writes every row.
    return milvus_store(settings).create(manifest, spec, items, every, images)


def main(directory: Path) -> int:
    """One rank of `build_across`'s torchrun."""
    request: dict[str, Any] = json.loads((directory / "request.json").read_text())
    rank = int(os.environ.get("RANK", "0"))
    try:
        with process_group() as shard:
            target = build_as_rank(
                Settings(**request["settings"]), request["version"], request["choice"], IndexSpec(**request["spec"]),
                shard,
            )  # fmt: skip
    except Exception as error:
        record_rank_error(directory, rank, error)
        raise
    if rank == 0:
        (directory / "result.json").write_text(json.dumps({"target": target}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
