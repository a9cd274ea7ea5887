from pathlib import Path

import numpy as np
import pytest
import torch

from models.data.mnist import MnistSplit
from models.errors import CheckpointError
from models.progress import Progress, TrainingDiverged, TrainingStopped
from models.registry import build_model
from models.training.trainer import train
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def images(full_mnist: dict[str, MnistSplit]) -> torch.Tensor:
    return torch.from_numpy(full_mnist["train"].images[:256].copy())


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [tensor.clone() for tensor in model.state_dict().values()]


def test_loss_falls_and_progress_is_reported(images: torch.Tensor) -> None:
    model = build_model(tiny_config(epochs=4, batch_size=32))
    seen: list[Progress] = []
    result = train(model, images, on_progress=seen.append)
    assert result.epoch_losses[-1] < 0.7 * result.epoch_losses[0]
    assert seen[-1].step == seen[-1].steps_total == 4 * 8
    assert seen[-1].fraction == 1.0
    assert all(p.images_per_s > 0 for p in seen)


def test_training_is_deterministic_for_a_seed(images: torch.Tensor) -> None:
    runs = []
    for _ in range(2):
        model = build_model(tiny_config(epochs=1, batch_size=64))
        train(model, images)
        runs.append(weights(model))
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_resume_continues_exactly_where_the_run_stopped(images: torch.Tensor, tmp_path: Path) -> None:
    whole = build_model(tiny_config(epochs=2, batch_size=64))
    train(whole, images)

    stopped = build_model(tiny_config(epochs=2, batch_size=64))
    calls = {"n": 0}

    def stop_in_second_epoch() -> bool:
        calls["n"] += 1
        return calls["n"] > 5  # 4 steps per epoch: stops during epoch 2

    with pytest.raises(TrainingStopped):
        train(stopped, images, state_dir=tmp_path, should_stop=stop_in_second_epoch)
    resumed = build_model(tiny_config(epochs=2, batch_size=64))
    result = train(resumed, images, state_dir=tmp_path)
    assert len(result.epoch_losses) == 2
    assert all(torch.equal(a, b) for a, b in zip(weights(whole), weights(resumed), strict=True))


def test_one_step_changes_the_weights(images: torch.Tensor) -> None:
    model = build_model(tiny_config())
    before = weights(model)
    result = train(model, images, max_steps=1)
    assert result.stopped_early
    assert any(not torch.equal(a, b) for a, b in zip(before, weights(model), strict=True))


def test_nan_loss_stops_with_a_clear_error(images: torch.Tensor) -> None:
    model = build_model(tiny_config())
    model.loss = lambda x: {"loss": torch.tensor(float("nan"), requires_grad=True)}  # type: ignore[method-assign]
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        train(model, images)


def test_training_state_is_loaded_without_unpickling_objects(images: torch.Tensor, tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (np.save, (str(tmp_path / "owned"), np.zeros(1)))

    torch.save({"payload": Exploit()}, tmp_path / "training_state.pt")
    with pytest.raises(CheckpointError, match="only tensors and plain values are loaded"):
        train(build_model(tiny_config()), images, state_dir=tmp_path)
    assert not (tmp_path / "owned.npy").exists()
