"""The benchmark commands in quick mode: every code path, on a few hundred images."""

from pathlib import Path

import pytest

from tests.helpers import bench_results, run_bench


def test_bench_assignments(workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    out = run_bench(workspace_dir, "l2")
    l2 = bench_results(out, "l2")
    assert [row["l2_lambda"] for row in l2] == [0.0, 1e-3, 1e-1, 1.0, 10.0, 100.0]
    # A huge penalty shrinks the weights: the sum of squares falls as lambda grows.
    assert l2[-1]["sum_squared_weights"] < l2[0]["sum_squared_weights"]
    out = run_bench(workspace_dir, "code-size")
    sizes = bench_results(out, "code_size")
    assert [row["code_dim"] for row in sizes["rows"]] == [2, 4, 8, 16, 32, 64]
    pca = [row["pca_mse"] for row in sizes["rows"]]
    assert pca == sorted(pca, reverse=True)
    out = run_bench(workspace_dir, "vae")
    assert bench_results(out, "vae")["samples"] == 64 and (out / "vae_samples.png").is_file()
    out = run_bench(workspace_dir, "overcomplete")
    rows = bench_results(out, "overcomplete")
    assert [row["hidden_units"] for row in rows] == [1000, 1000]
    # The denoising model keeps far less of its input's noise than the plain one (assignment 4.3.5.1).
    plain, denoising = rows
    assert denoising["noise_kept"] < plain["noise_kept"] / 5
    assert (out / "overcomplete.png").is_file() and (out / "l2.png").is_file() and (out / "code_size.png").is_file()
