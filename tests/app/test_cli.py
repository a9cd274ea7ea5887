"""Tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from app.cli import ensure_ready, main
from app.services.workspace import Workspace
from app.settings import Settings
from models.data.mnist import MnistSplit
from tests.helpers import chance_precision


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_models_describe_prints_the_seed_architecture(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "describe", "conv")
    assert code == 0
    assert "256x4x4" in out and "ConvTranspose2d" in out and "1x28x28" in out
    assert "total trainable parameters" in out


def test_train_index_eval_list_from_the_command_line(
    capsys: pytest.CaptureFixture[str],
    workspace_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    full_mnist: dict[str, MnistSplit],
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    base = ["--data-dir", str(workspace_dir)]
    tiny = ["--set", "channels=[8,16,32]", "--epochs", "1", "--batch-size", "100", "--train-subset", "300"]
    code, out, err = run(capsys, *base, "train", "conv", *tiny)
    assert code == 0, err
    version = out.strip()
    assert "saved model" in err and version in err
    record = json.loads((workspace_dir / "models" / version / "model.json").read_text())
    assert record["config"]["channels"] == [8, 16, 32]
    assert record["config"]["training"]["train_subset"] == 300
    # Trained from the command line, the model carries its retrieval quality like a job's does.
    assert record["metrics"]["retrieval"]["p_at_10"] > 2 * chance_precision(full_mnist)
    assert record["metrics"]["retrieval"]["map_at_100"] > 0 and record["metrics"]["retrieval"]["reconstruction_mse"] > 0

    code, out, err = run(capsys, *base, "index", "build", "--model", version)
    assert code == 0, err
    assert Workspace(workspace_dir).active().model_version == version  # type: ignore[union-attr]

    code, out, err = run(capsys, *base, "eval", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [row["method"] for row in rows] == [f"conv {version}", "raw pixels", "PCA-16"]
    # Baselines measured in the same run: raw pixels retrieve far above chance, and so does the model.
    chance = chance_precision(full_mnist)
    assert rows[1]["p_at_10"] > 5 * chance and rows[0]["p_at_10"] > 2 * chance
    assert rows[0]["reconstruction_mse"] > 0 and rows[1]["reconstruction_mse"] is None

    code, out, _ = run(capsys, *base, "models", "list")
    assert code == 0 and f"* {version}" in out and "P@10=" in out


def test_dry_run_trains_one_batch(capsys: pytest.CaptureFixture[str], workspace_dir: Path) -> None:
    code, out, err = run(
        capsys, "--data-dir", str(workspace_dir), "train", "conv", "--dry-run", "--set", "channels=[4,8,8]"
    )
    assert code == 0, err
    record = json.loads((workspace_dir / "models" / out.strip() / "model.json").read_text())
    assert record["history"]["stopped_early"] is True


def test_bad_config_is_a_clear_error(capsys: pytest.CaptureFixture[str], workspace_dir: Path) -> None:
    code, _, err = run(capsys, "--data-dir", str(workspace_dir), "train", "conv", "--set", "code_dim=0")
    assert code == 2
    assert "code_dim" in err and "greater than or equal to 1" in err


def test_the_first_start_trains_evaluates_and_activates(
    workspace_dir: Path, monkeypatch: pytest.MonkeyPatch, full_mnist: dict[str, MnistSplit]
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    tiny = {"channels": [8, 16, 32], "training": {"epochs": 1, "train_subset": 300, "batch_size": 100}}
    ensure_ready(Settings(data_dir=workspace_dir, mnist_source="idx", bootstrap_config=json.dumps(tiny)))
    workspace = Workspace(workspace_dir)
    active = workspace.active()
    assert active is not None
    record = json.loads((workspace.models_dir / active.model_version / "model.json").read_text())
    assert record["metrics"]["retrieval"]["p_at_10"] > 2 * chance_precision(full_mnist)  # the web page shows it


def test_eval_simulates_relevance_feedback(
    capsys: pytest.CaptureFixture[str], trained_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    code, out, err = run(capsys, "--data-dir", str(trained_copy), "eval", "--feedback", "--json")
    assert code == 0, err
    rounds = json.loads(out)["p_at_10_by_round"]
    assert len(rounds) == 3 and rounds[1] > rounds[0] and rounds[2] >= rounds[1]  # each round helps


def _forbid_the_test_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any read of the test split fail the test: validation must choose without it."""
    original = Workspace.split

    def training_only(self: Workspace, name: str) -> MnistSplit:
        assert name == "train", "validation must not read the test split"
        return original(self, name)

    monkeypatch.setattr(Workspace, "split", training_only)


def test_eval_validation_scores_a_split_of_the_training_set_without_a_test_image(
    capsys: pytest.CaptureFixture[str],
    trained_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
    full_mnist: dict[str, MnistSplit],
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    _forbid_the_test_split(monkeypatch)
    code, out, err = run(capsys, "--data-dir", str(trained_copy), "eval", "--validation", "--json")
    assert code == 0, err
    [scores] = json.loads(out).values()
    assert scores["p_at_10"] > 2 * chance_precision(full_mnist) and 0 < scores["map_at_100"] <= 1


def test_eval_robustness_on_the_validation_split_reads_no_test_image(
    capsys: pytest.CaptureFixture[str], trained_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    _forbid_the_test_split(monkeypatch)
    code, out, err = run(capsys, "--data-dir", str(trained_copy), "eval", "--robustness", "--validation", "--json")
    assert code == 0, err
    table = json.loads(out)
    assert set(table) >= {"raw pixels"} and len(table) == 2  # the active model and raw pixels
    for scores in table.values():
        assert {"rerendered", "typed", "drawn"} <= set(scores) and all(0 <= p <= 1 for p in scores.values())
    code, out, err = run(
        capsys, "--data-dir", str(trained_copy), "eval", "--robustness", "--validation", "--by-digit", "--json"
    )
    assert code == 0, err
    by_digit = json.loads(out)["raw pixels"]
    assert {f"drawn, digit {d}" for d in range(10)} <= set(by_digit)
    assert by_digit["drawn"] == pytest.approx(sum(by_digit[f"drawn, digit {d}"] for d in range(10)) / 10)


def test_eval_draws_the_hardest_queries_worst_first(
    capsys: pytest.CaptureFixture[str], trained_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    out_png = tmp_path / "hard.png"
    code, out, err = run(
        capsys, "--data-dir", str(trained_copy), "eval", "--hardest", "5", "--out", str(out_png), "--json"
    )
    assert code == 0, err
    hard = json.loads(out)
    assert len(hard) == 5 and [h["precision"] for h in hard] == sorted(h["precision"] for h in hard)
    for h in hard:  # each one's precision is what its neighbours' labels say
        assert h["precision"] == sum(label == h["label"] for label in h["neighbour_labels"]) / 10
    assert Image.open(out_png).size[0] > 11 * 28  # the query and its 10 neighbours side by side


def test_the_seed_exact_config_is_one_flag_away_and_sits_beside_the_default(
    capsys: pytest.CaptureFixture[str], trained_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    base = ["--data-dir", str(trained_copy)]
    code, out, err = run(capsys, *base, "train", "conv", "--seed-exact", "--set", "channels=[8,16,32]", "--dry-run")
    assert code == 0, err
    seed_exact = out.strip()
    record = json.loads((trained_copy / "models" / seed_exact / "model.json").read_text())
    assert record["config"]["code_activation"] == "relu"  # the chapter's ReLU code; the default's is linear
    assert record["config"]["augment"] is False and record["config"]["contrastive"] == 0.0  # plain reconstruction
    assert record["config"]["stroke_pooled_code"] is False  # the encoder's own code
    code, out, err = run(capsys, *base, "eval", "--json", "--also", seed_exact)
    assert code == 0, err
    methods = [row["method"] for row in json.loads(out)]
    assert methods[1] == f"conv {seed_exact}" and methods[2:] == ["raw pixels", "PCA-16"]
    assert run(capsys, *base, "train", "vae", "--seed-exact", "--dry-run")[0] == 2  # conv only


def test_nproc_is_checked_before_anything_trains(
    capsys: pytest.CaptureFixture[str], workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["--data-dir", str(workspace_dir), "train", "conv"]
    code, _, err = run(capsys, *base, "--nproc", "0")
    assert code == 2 and "--nproc must be at least 1" in err
    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun
    monkeypatch.setenv("RANK", "0")
    code, _, err = run(capsys, *base, "--nproc", "2")
    assert code == 2 and "under torchrun leave it out" in err
    assert not (workspace_dir / "models").exists()


@pytest.mark.slow
def test_nproc_and_torchrun_train_the_same_model_across_two_processes(
    capsys: pytest.CaptureFixture[str], workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    base = ["--data-dir", str(workspace_dir)]
    tiny = ["--set", "channels=[8,16,32]", "--epochs", "1", "--batch-size", "100", "--dry-run"]
    code, out, err = run(capsys, *base, "train", "conv", *tiny, "--nproc", "2")
    assert code == 0, err
    version = out.strip()
    assert f"saved model {version}" in err
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    ranks = subprocess.run(
        [*torchrun, "-m", "app.cli", *base, "train", "conv", *tiny],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert ranks.returncode == 0, ranks.stderr
    assert ranks.stdout.split() == [version]  # printed once, by rank 0
