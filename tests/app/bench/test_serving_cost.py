"""`aeseek bench serve` (quick): the upload mix, the tight loop, the work's limit and the service, measured."""

from pathlib import Path

import numpy as np
import pytest

from app.bench.uploads import upload_mix
from tests.helpers import bench_results, run_bench


def test_the_upload_mix_is_what_people_send(full_mnist: dict) -> None:
    mix = upload_mix(full_mnist["test"].images[:50], count=60, phones=2)
    assert len(mix) == 62 and mix == upload_mix(full_mnist["test"].images[:50], count=60, phones=2)  # seeded
    formats = {upload.data[:4] for upload in mix}
    assert {b"\x89PNG", b"GIF8", b"RIFF"} <= formats and any(f.startswith(b"\xff\xd8") for f in formats)
    sides = [max(upload.width, upload.height) for upload in mix]
    assert min(sides) == 28 and 500 < max(s for s in sides if s < 1000) <= 600 and max(sides) == 4032
    assert np.mean([s == 28 for s in sides]) < 0.25  # mostly scans and crops, not MNIST itself


@pytest.mark.slow
def test_bench_serve_measures_the_mix(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    out = run_bench(trained_copy, "serve")
    result = bench_results(out, "serve")
    assert result["tight_loop"]["this checkout"]["median_ms"] > 0 and result["limit_per_s"] > 0
    rows = {row["scenario"]: row for row in result["rows"]}
    assert {"this checkout, 1 worker"} < set(rows) and all(row["errors"] == 0 for row in rows.values())
    assert "decode" in rows["this checkout, 1 worker"]["stages_ms"]
    assert "Reproduce: `aeseek bench serve" in (out / "serve.md").read_text()
