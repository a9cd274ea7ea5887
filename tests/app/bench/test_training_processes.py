"""`aeseek bench train --nproc`: images/s across process counts, in quick mode."""

from pathlib import Path

import pytest

from tests.helpers import bench_results, run_bench


@pytest.mark.slow
def test_bench_train_across_one_and_two_processes(workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    out = run_bench(workspace_dir, "train", "--nproc", "1,2")
    results = bench_results(out, "train_nproc")
    assert results["images"] == 512  # quick mode
    rows = results["rows"]
    assert [row["nproc"] for row in rows] == [1, 2] and rows[0]["speed_up"] == 1.0
    for row in rows:
        assert row["loop_images_per_s"] > 0 and row["end_to_end_images_per_s"] > 0 and row["loss"] > 0
        # Start-up counts end to end: torchrun and the ranks take seconds before the first step.
        assert row["end_to_end_images_per_s"] < row["loop_images_per_s"]
    table = (out / "train_nproc.md").read_text()
    assert "Measured" in table and "\n| 2 | " in table


def test_bench_nproc_must_be_counts(workspace_dir: Path) -> None:
    from app.cli import main

    assert main(["--data-dir", str(workspace_dir), "bench", "train", "--nproc", "1,zero", "--quick"]) == 2
