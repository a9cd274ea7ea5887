"""The benchmark commands in quick mode: every code path, on a few hundred images."""

import json
from pathlib import Path

import pytest

from app.cli import main


@pytest.fixture
def workspace_dir(small_data_dir: Path, tmp_path: Path) -> Path:
    (tmp_path / "mnist").symlink_to(small_data_dir / "mnist")
    return tmp_path


def bench(workspace_dir: Path, *args: str) -> Path:
    out = workspace_dir / "results"
    code = main(["--data-dir", str(workspace_dir), "bench", *args, "--quick", "--out", str(out)])
    assert code == 0
    return out


def results(out: Path, name: str) -> dict:
    document = json.loads((out / f"{name}.json").read_text())
    assert document["quick"] is True and document["machine"]["cores"] >= 1
    return document["results"]


def test_bench_variants_writes_a_table_and_a_grid(workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    out = bench(workspace_dir, "variants")
    rows = results(out, "variants")
    assert [row["variant"] for row in rows][:3] == ["vanilla", "multilayer", "stacked"] and len(rows) == 12
    for row in rows:
        assert 0 <= row["p_at_10"] <= 1 and row["reconstruction_mse"] > 0 and row["parameters"] > 0
    by_variant = {row["variant"]: row for row in rows}
    assert "classifier_test_accuracy" in by_variant["stacked"]["extras"]
    assert "pca_16_reconstruction_mse" in by_variant["deep"]["extras"]
    table = (out / "variants.md").read_text()
    assert "| conv |" in table and "Measured" in table
    assert (out / "variants.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_assignments(workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    out = bench(workspace_dir, "l2")
    l2 = results(out, "l2")
    assert [row["l2_lambda"] for row in l2] == [0.0, 1e-3, 1e-1, 1.0, 10.0, 100.0]
    # A huge penalty shrinks the weights: the sum of squares falls as lambda grows.
    assert l2[-1]["sum_squared_weights"] < l2[0]["sum_squared_weights"]
    out = bench(workspace_dir, "code-size")
    sizes = results(out, "code_size")
    assert [row["code_dim"] for row in sizes["rows"]] == [2, 4, 8, 16, 32, 64]
    pca = [row["pca_mse"] for row in sizes["rows"]]
    assert pca == sorted(pca, reverse=True)
    out = bench(workspace_dir, "vae")
    assert results(out, "vae")["samples"] == 64 and (out / "vae_samples.png").is_file()
    out = bench(workspace_dir, "overcomplete")
    rows = results(out, "overcomplete")
    assert [row["hidden_units"] for row in rows] == [1000, 1000]
    assert all(row["noise_kept"] >= 0 for row in rows)
    assert (out / "overcomplete.png").is_file() and (out / "l2.png").is_file() and (out / "code_size.png").is_file()


def test_bench_serve_and_train(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    root = trained_copy
    out = bench(root, "serve")
    serve = results(out, "serve")
    rows = serve["rows"]
    scenarios = {"health", "search, unbatched", "search, batched", "search, unbatched, IVF", "search, batched, IVF"}
    assert {row["scenario"] for row in rows} == scenarios
    assert all(row["errors"] == 0 and row["requests"] > 0 for row in rows)
    batched = [row for row in rows if row["scenario"] == "search, batched"]
    assert {"decode", "preprocess", "encode", "search", "queue", "serialise"} <= set(batched[0]["stages_ms"])
    assert all(row["mean_batch_size"] >= 1 for row in batched)
    # The server's own request time covers at least its search stages.
    assert all(row["server_request_ms"] >= row["stages_ms"]["encode"] for row in batched)
    report = (out / "serve.md").read_text()
    assert "x unbatched search" in report and "Load generator:" in report
    # The real workspace is untouched by the IVF scenario (it serves from a scratch copy).
    assert not any("IVF" in path.name for path in (root / "galleries").iterdir())
    out = bench(root, "train")
    speed = results(out, "train_speed")
    assert speed["aeseek_images_per_s"] > 0 and speed["bare_images_per_s"] > 0
    assert speed["encode_images_per_s"] > 0 and len(speed["variations"]) == 6


def test_bench_index_quick(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    root = trained_copy
    out = bench(root, "index")
    document = results(out, "index")
    kinds = {(row["size"], row["kind"]) for row in document["rows"]}
    assert {(600, "Flat"), (600, "IVF"), (4000, "HNSW"), (4000, "IVFPQ")} <= kinds
    assert all(0 <= row["recall_at_10"] <= 1 and row["batched_qps"] > 0 for row in document["rows"])
    assert [row["recall_at_10"] for row in document["rows"] if row["kind"] == "Flat"] == [1.0, 1.0]


def test_mixture_sample_follows_each_digit() -> None:
    import numpy as np

    from app.bench.index_scale import mixture_sample

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    codes = np.where(labels[:, None] == 0, -5.0, 5.0) + rng.normal(size=(1000, 3))
    sample = mixture_sample(codes, labels, 4000)
    assert sample.shape == (4000, 3)
    assert abs(float((sample[:, 0] > 0).mean()) - 0.5) < 0.05  # both components, by frequency
