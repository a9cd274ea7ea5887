"""The benchmark commands in quick mode: every code path, on a few hundred images."""

from pathlib import Path

import pytest

from tests.helpers import bench_results, run_bench


def test_bench_index_quick(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    root = trained_copy
    out = run_bench(root, "index")
    document = bench_results(out, "index")
    kinds = {(row["size"], row["kind"]) for row in document["rows"]}
    assert {(600, "Flat"), (600, "IVF"), (4000, "HNSW"), (4000, "IVFPQ")} <= kinds
    # Approximate indexes find most of the exact top 10; a random ranking would find 10/size of them.
    assert all(row["recall_at_10"] > 0.8 and row["batched_qps"] > 0 for row in document["rows"])
    assert [row["recall_at_10"] for row in document["rows"] if row["kind"] == "Flat"] == [1.0, 1.0]


def test_bench_index_compares_backends_quick(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    out = run_bench(trained_copy, "index", "--backend", "faiss,milvus-lite")
    rows = bench_results(out, "index-backends")["rows"]
    assert {(row["backend"], row["kind"]) for row in rows} == {
        (backend, kind) for backend in ("faiss", "milvus-lite") for kind in ("Flat", "HNSW")
    }
    # Both hold the same 4,000 codes and answer through the service's search: exact is exact in both.
    assert all(row["recall_at_10"] == 1.0 for row in rows if row["kind"] == "Flat")
    assert all(row["size"] == 4000 and row["recall_at_10"] > 0.8 and row["single_qps"] > 0 for row in rows)


def test_mixture_sample_follows_each_digit() -> None:
    import numpy as np

    from app.bench.index_scale import mixture_sample

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    codes = np.where(labels[:, None] == 0, -5.0, 5.0) + rng.normal(size=(1000, 3))
    sample = mixture_sample(codes, labels, 4000)
    assert sample.shape == (4000, 3)
    assert abs(float((sample[:, 0] > 0).mean()) - 0.5) < 0.05  # both components, by frequency
