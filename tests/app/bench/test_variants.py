"""The benchmark commands in quick mode: every code path, on a few hundred images."""

from pathlib import Path

import pytest

from models.data.mnist import MnistSplit
from tests.helpers import bench_results, chance_precision, run_bench


def test_bench_variants_writes_a_table_and_a_grid(
    workspace_dir: Path, monkeypatch: pytest.MonkeyPatch, full_mnist: dict[str, MnistSplit]
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    out = run_bench(workspace_dir, "variants")
    rows = bench_results(out, "variants")
    assert [row["variant"] for row in rows][:3] == ["vanilla", "multilayer", "stacked"] and len(rows) == 12
    # One quick epoch on 512 images: every variant retrieves above chance, most of them twice over.
    chance = chance_precision(full_mnist)
    assert all(row["p_at_10"] > chance and row["reconstruction_mse"] > 0 for row in rows)
    assert sum(row["p_at_10"] > 2 * chance for row in rows) >= 9
    by_variant = {row["variant"]: row for row in rows}
    assert "classifier_test_accuracy" in by_variant["stacked"]["extras"]
    assert "pca_16_reconstruction_mse" in by_variant["deep"]["extras"]
    table = (out / "variants.md").read_text()
    assert "| conv |" in table and "Measured" in table
    assert (out / "variants.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
