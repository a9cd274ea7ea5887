"""`aeseek bench index`: index types against gallery size, 60k -> 1M -> 10M.

Galleries: the active model's 60,000 real training-set codes; for 1M and 10M, codes sampled
from a Gaussian mixture fitted to them (one full-covariance component per digit, weighted by
the digit's frequency). Queries: 1,000 real test-set codes. For each index type and size:
build time (training included), bytes per vector (serialised size / count), queries/s one at
a time and in one batch, and recall@10 against exact search. The nprobe (IVF, IVFPQ) or
efSearch (HNSW) reported is the smallest of a sweep that reaches recall@10 >= 0.95, or the
largest tried. HNSW is not built at 10M: its graph construction alone would take hours on
2 cores (it is measured at 60k and 1M).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import faiss
import numpy as np

from app.bench.common import Bench, machine, markdown_table, summary_line
from app.rendering.plots import curves_png
from app.services.workspace import embed_images
from index.backend import INDEX_KINDS, FaissIndex, IndexSpec

SIZES = (60_000, 1_000_000, 10_000_000)
QUERIES = 1000
SINGLE_QUERIES = 200
TARGET_RECALL = 0.95
SWEEPS: dict[str, tuple[str, list[int]]] = {
    "IVF": ("nprobe", [4, 8, 16, 32, 64, 128]),
    "IVFPQ": ("nprobe", [8, 16, 32, 64]),
    "HNSW": ("ef_search", [16, 32, 64, 128, 256]),
}


def mixture_sample(codes: np.ndarray, labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` codes from a Gaussian mixture fitted to real codes, one component per label."""
    rng = np.random.default_rng(seed)
    digits, frequency = np.unique(labels, return_counts=True)
    chosen = rng.choice(len(digits), size=count, p=frequency / frequency.sum())
    out = np.empty((count, codes.shape[1]), dtype=np.float32)
    for position, digit in enumerate(digits):
        rows = np.flatnonzero(chosen == position)
        members = codes[labels == digit].astype(np.float64)
        out[rows] = rng.multivariate_normal(members.mean(axis=0), np.cov(members.T), size=len(rows))
    return out


def _recall(truth: np.ndarray, found: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(truth, found, strict=True)]))


def _timed_search(index: FaissIndex, queries: np.ndarray) -> tuple[np.ndarray, float, float]:
    started = time.perf_counter()
    _, found = index.search(queries, 10)
    batched_qps = len(queries) / (time.perf_counter() - started)
    started = time.perf_counter()
    for query in queries[:SINGLE_QUERIES]:
        index.search(query[None], 10)
    single_qps = SINGLE_QUERIES / (time.perf_counter() - started)
    return found, batched_qps, single_qps


def _measure(kind: str, gallery: np.ndarray, queries: np.ndarray, truth: np.ndarray | None) -> dict[str, Any]:
    size = len(gallery)
    nlist = int(min(4096, max(64, 4 * np.sqrt(size))))
    base = IndexSpec(kind=kind, nlist=nlist)  # type: ignore[arg-type]
    started = time.perf_counter()
    index = FaissIndex.build(base, gallery, np.arange(size, dtype=np.int64))
    build_s = time.perf_counter() - started
    row: dict[str, Any] = {
        "kind": kind,
        "size": size,
        "build_s": build_s,
        "bytes_per_vector": index.serialized_bytes() / size,
    }
    if kind == "Flat":
        found, batched, single = _timed_search(index, queries)
        return {**row, "knob": None, "recall_at_10": 1.0 if truth is None else _recall(truth, found),
                "batched_qps": batched, "single_qps": single, "nlist": None}  # fmt: skip
    knob, values = SWEEPS[kind]
    best: dict[str, Any] = {}
    for value in values:
        index.spec = IndexSpec(**{**base.as_dict(), knob: value})
        index._apply_search_knobs()
        found, batched, single = _timed_search(index, queries)
        assert truth is not None
        best = {knob: value, "recall_at_10": _recall(truth, found), "batched_qps": batched, "single_qps": single}
        if best["recall_at_10"] >= TARGET_RECALL:
            break
    return {**row, "knob": f"{knob}={best[knob]}", "nlist": nlist if kind != "HNSW" else None, **best}


def run_index_scale(bench: Bench, max_size: int | None = None) -> list[dict[str, Any]]:
    """Measure every index type at every size (up to `max_size`); write index.json, index.md and index.png."""
    from models.checkpoints import load_model

    active = bench.workspace.active()
    if active is None:
        raise RuntimeError("no active model: run `aeseek serve` or `aeseek train conv --activate` first")
    model, record = load_model(bench.workspace.models_dir / active.model_version)
    train, test = bench.workspace.split("train"), bench.workspace.split("test")
    print("== embedding the real codes", file=sys.stderr)
    codes, labels = embed_images(model, train.images), train.labels
    queries = embed_images(model, test.images[:QUERIES])
    sizes = (len(codes), 4_000) if bench.quick else tuple(size for size in SIZES if size <= (max_size or SIZES[-1]))
    if bench.quick:  # smoke runs share the machine with tests: OpenMP spinning on a busy core is slow
        faiss.omp_set_num_threads(1)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        gallery = codes if size == len(codes) else mixture_sample(codes, labels, size)
        print(f"== {size:,} codes: exact ground truth", file=sys.stderr)
        exact = faiss.IndexFlatL2(gallery.shape[1])
        exact.add(gallery)
        _, truth = exact.search(queries, 10)
        del exact
        for kind in INDEX_KINDS:
            if kind == "HNSW" and size > 1_000_000:
                continue
            print(f"== {size:,} codes: {kind}", file=sys.stderr)
            rows.append(_measure(kind, gallery, queries, truth))
        del gallery
    bench.write_json("index", {"model": record.version, "faiss_threads": faiss.omp_get_max_threads(), "rows": rows})
    table = markdown_table(
        ["size", "index", "knob", "build s", "bytes/vector", "recall@10", "queries/s single", "queries/s batched"],
        [
            [f"{r['size']:,}", r["kind"], r["knob"] or "exact", f"{r['build_s']:.1f}", f"{r['bytes_per_vector']:.0f}",
             f"{r['recall_at_10']:.3f}", f"{r['single_qps']:.0f}", f"{r['batched_qps']:.0f}"]
            for r in rows
        ],
    )  # fmt: skip
    note = (
        f"\nGallery codes: {len(codes):,} real codes of model {record.version}; larger galleries are sampled "
        "from a Gaussian mixture fitted to them (one full-covariance component per digit). Queries: "
        f"{QUERIES:,} real test codes; recall against exact search on the same gallery.\n"
    )
    bench.write_text("index.md", summary_line(machine()) + table + note)
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for kind in INDEX_KINDS:
        chosen = [r for r in rows if r["kind"] == kind]
        curves[f"{kind} batched q/s"] = ([float(r["size"]) for r in chosen], [r["batched_qps"] for r in chosen])
    bench.write_png(
        "index.png",
        curves_png(curves, "Search throughput against gallery size", "gallery size", log_x=True, ylabel="queries/s"),
    )
    return rows
