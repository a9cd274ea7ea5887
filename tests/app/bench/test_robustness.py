"""The robustness set: labelled user-like uploads from three sources, and the eval that uses it."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from app.bench import robustness
from app.bench.robustness import SOURCES, robustness_set
from app.cli import main
from models.data.mnist import MnistSplit
from models.data.preprocessing import decode_image, to_grayscale, to_mnist
from tests.helpers import chance_precision


def test_every_source_gives_labelled_images_the_service_can_read(full_mnist: dict[str, MnistSplit]) -> None:
    test = full_mnist["test"]
    samples = robustness_set(test.images, test.labels, per_source=20)
    assert samples == robustness_set(test.images, test.labels, per_source=20)  # seeded
    assert {sample.source for sample in samples} == set(SOURCES)
    for source in SOURCES:
        chosen = [sample for sample in samples if sample.source == source]
        assert len(chosen) == 20 and len({sample.label for sample in chosen}) >= 8
        sizes = [decode_image(sample.data).size for sample in chosen]
        assert max(max(size) for size in sizes) >= 200  # uploads, not 28x28 digits
        assert all(to_mnist(to_grayscale(decode_image(sample.data))).max() > 0 for sample in chosen)
    assert {sample.group for sample in samples if sample.source == "rerendered"} == {
        f"rerendered, {pen}" for pen in robustness.PENS.values()
    }
    assert all(sample.group == "" for sample in samples if sample.source != "rerendered")


@pytest.mark.slow
def test_eval_robustness_reports_each_source_for_the_model_and_raw_pixels(
    capsys: pytest.CaptureFixture[str], trained_copy: Path, monkeypatch: pytest.MonkeyPatch, full_mnist: dict
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    assert main(["--data-dir", str(trained_copy), "eval", "--robustness", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert "raw pixels" in table and len(table) == 2
    pens = {f"rerendered, {pen}" for pen in robustness.PENS.values()}
    for scores in table.values():
        assert set(scores) == set(SOURCES) | pens
        # The re-rendered figure is its three pens' figures, weighted by how many uploads each has.
        pen_counts = Counter(
            sample.group
            for sample in robustness_set(full_mnist["test"].images, full_mnist["test"].labels)
            if sample.group
        )
        weighted = sum(scores[pen] * count for pen, count in pen_counts.items()) / sum(pen_counts.values())
        assert scores["rerendered"] == pytest.approx(weighted)
    # Drawn digits are clean strokes: even raw pixels on 600 gallery images find them well above chance.
    assert table["raw pixels"]["drawn"] > 2 * chance_precision(full_mnist) and np.isfinite(list(scores.values())).all()


def test_typed_digits_need_no_installed_font(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(robustness, "FONT_DIRS", (tmp_path / "no-fonts",))
    samples = robustness.typed(10, np.random.default_rng(0))
    assert [sample.label for sample in samples] == list(range(10))
    assert all(to_mnist(to_grayscale(decode_image(sample.data))).max() > 0 for sample in samples)
