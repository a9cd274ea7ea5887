"""`aeseek bench attack` against a real server: hostile requests are refused, normal searches answered."""

from pathlib import Path

import pytest

from tests.helpers import bench_results, run_bench


@pytest.mark.slow
def test_an_attack_is_refused_while_normal_searches_are_answered(
    trained_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    out = run_bench(trained_copy, "attack")
    [row] = bench_results(out, "attack")
    answers = row["answers"]
    assert set(answers["flood"]) <= {"413", "422", "503"}  # cut off at the part limit (or shed), never a 5xx
    assert set(answers["large image"]) <= {"200", "503"} and set(answers["batch of 32 large images"]) <= {"200", "503"}
    assert answers["search"].get("200", 0) > 0 and answers["ready"].get("200", 0) > 0
    assert not any("5xx" in counts or "transport error" in counts for counts in answers.values())
    assert row["peak_memory_mb"] > 0 and "Reproduce: `aeseek bench attack" in (out / "attack.md").read_text()
