"""`aeseek bench index --backend faiss,milvus-lite,milvus`: the gallery backends side by side.

Each backend holds the same gallery the way the service holds it (FAISS: `index.gallery.Gallery`;
Milvus: a collection with id, code, label, split, position, metadata and the image, through
`index.milvus`), and answers through the same `search` the service calls, item fields included.
Galleries: the active model's 60,000 real training codes, and 1,000,000 codes sampled from a
Gaussian mixture fitted to them (see index_scale.py); queries: 1,000 real test codes. Reported
per backend, index type and size: build time (until searchable), queries/s one at a time and
in one batch of 1,000, and recall@10 against exact search.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

import faiss
import numpy as np

from app.bench.common import Bench, machine, markdown_table, summary_line
from app.bench.index_scale import QUERIES, SINGLE_QUERIES, mixture_sample
from app.services.workspace import embed_images
from index.backend import IndexSpec
from index.gallery import Gallery, GalleryItem
from index.milvus import MilvusGallery, MilvusStore

BACKENDS = ("faiss", "milvus-lite", "milvus")
SIZES = (60_000, 1_000_000)
KINDS = ("Flat", "HNSW")  # exact, and the graph index both engines build (Milvus Lite has no IVF-PQ)
HNSW = {"hnsw_m": 32, "ef_search": 64}


def _recall(truth: np.ndarray, found: list[list[int]]) -> float:
    return float(np.mean([len(set(t) & set(f)) / truth.shape[1] for t, f in zip(truth.tolist(), found, strict=True)]))


def _build(backend: str, spec: IndexSpec, codes: np.ndarray, images: np.ndarray, uri: str) -> Gallery:
    items = [GalleryItem(i, "train", i, 0) for i in range(len(codes))]
    local = Gallery.build(codes, items, images, model_version="bench", model_variant="conv", gallery="train", spec=spec)
    if backend == "faiss":
        return local
    store = MilvusStore(uri, f"bench{uuid.uuid4().hex[:8]}")
    return store.open(store.create(local.manifest, spec, items, codes, images))


def _measure(
    backend: str, kind: str, codes: np.ndarray, queries: np.ndarray, truth: np.ndarray, uri: str
) -> dict[str, Any]:
    spec = IndexSpec(kind=kind, **(HNSW if kind == "HNSW" else {}))  # type: ignore[arg-type]
    images = np.zeros((len(codes), 28, 28), dtype=np.uint8)  # stored as the service stores images
    started = time.perf_counter()
    gallery = _build(backend, spec, codes, images, uri)
    build_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        found = [[n.item.id for n in row] for row in gallery.search(queries, 10)]
        batched = len(queries) / (time.perf_counter() - started)
        started = time.perf_counter()
        for query in queries[:SINGLE_QUERIES]:
            gallery.search(query[None], 10)
        single = SINGLE_QUERIES / (time.perf_counter() - started)
    finally:
        if isinstance(gallery, MilvusGallery):
            gallery.store.drop(gallery.name)
            gallery.store.client.close()
    return {"backend": backend, "kind": kind, "size": len(codes), "build_s": build_s,
            "recall_at_10": _recall(truth, found), "single_qps": single, "batched_qps": batched}  # fmt: skip


def run_index_backends(
    bench: Bench, backends: list[str], uri: str, lite_path: str, max_size: int | None
) -> list[dict[str, Any]]:
    """Measure every backend at every size; write index-backends.json and .md."""
    from models.checkpoints import load_model

    active = bench.workspace.active()
    if active is None:
        raise RuntimeError("no active model: run `aeseek serve` or `aeseek train conv --activate` first")
    model, record = load_model(bench.workspace.models_dir / active.model_version)
    train, test = bench.workspace.split("train"), bench.workspace.split("test")
    codes, labels = embed_images(model, train.images), train.labels
    queries = embed_images(model, test.images[:QUERIES])
    sizes = (4_000,) if bench.quick else tuple(size for size in SIZES if size <= (max_size or SIZES[-1]))
    faiss.omp_set_num_threads(1)  # one thread was fastest for 16-d search on 2 cores (as the service runs)
    bench.out_dir.mkdir(parents=True, exist_ok=True)  # Milvus Lite files go there
    rows = []
    for size in sizes:
        gallery = codes[:size] if size <= len(codes) else mixture_sample(codes, labels, size)
        exact = faiss.IndexFlatL2(gallery.shape[1])
        exact.add(gallery)
        _, truth = exact.search(queries, 10)
        for backend in backends:
            for kind in KINDS:
                print(f"== {size:,} codes: {backend} {kind}", file=sys.stderr)
                target = lite_path.replace(".db", f"-{size}-{kind}.db") if backend == "milvus-lite" else uri
                rows.append(_measure(backend, kind, gallery, queries, truth, target))
    bench.write_json("index-backends", {"model": record.version, "machine": machine(), "rows": rows})
    table = markdown_table(
        ["size", "backend", "index", "build s", "recall@10", "queries/s single", "queries/s batched"],
        [
            [f"{r['size']:,}", r["backend"], r["kind"], f"{r['build_s']:.1f}", f"{r['recall_at_10']:.3f}",
             f"{r['single_qps']:.0f}", f"{r['batched_qps']:.0f}"]
            for r in rows
        ],
    )  # fmt: skip
    note = (
        f"\nOne process, one thread each (FAISS OpenMP 1); Milvus over gRPC on loopback ({uri}), Milvus Lite "
        f"in a file. Every search returns the items' fields as the service's does. Galleries: real training "
        f"codes of model {record.version} (up to {len(codes):,}; beyond, sampled from a mixture fitted to them); "
        f"{QUERIES:,} real test queries; recall@10 against exact search. HNSW: M=32, ef=64.\n"
    )
    bench.write_text("index-backends.md", summary_line(machine()) + table + note)
    return rows
