"""One parametrised test per contract, over every variant of the registry."""

from pathlib import Path
from typing import Any

import pytest
import torch

from models.base import Autoencoder
from models.checkpoints import load_model, save_model
from models.data.mnist import MnistSplit
from models.registry import VARIANTS, build_model, config_from_dict, default_config
from models.training.trainer import train

# Smaller layers than the defaults so the whole registry trains in seconds.
SMALL: dict[str, dict[str, Any]] = {
    "conv": {"channels": [8, 16, 32]},
    "conv_vae": {"channels": [8, 16, 32]},
    "deep": {"hidden": [64, 32], "rbm_epochs": 1},
    "stacked": {"hidden": [64, 32], "layer_epochs": 1},
    "multilayer": {"hidden": [64, 32]},
    "l2": {"hidden": [64, 32]},
    "vae": {"hidden": [64]},
    "lstm": {"hidden_size": 32},
}


def small_model(variant: str, **training: Any) -> Autoencoder:
    raw = {"variant": variant, **SMALL.get(variant, {}), "training": {"batch_size": 32, "lr": 3e-3, **training}}
    return build_model(config_from_dict(raw))


@pytest.fixture(scope="module")
def images(full_mnist: dict[str, MnistSplit]) -> torch.Tensor:
    return torch.from_numpy(full_mnist["train"].images[:512].copy())


def test_the_registry_has_every_variant_of_the_chapter() -> None:
    assert set(VARIANTS) == {
        "vanilla",
        "multilayer",
        "stacked",
        "deep",
        "denoising",
        "conv",
        "conv_vae",
        "l2",
        "sparse",
        "contractive",
        "vae",
        "lstm",
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_default_config_round_trips_through_json(variant: str) -> None:
    config = default_config(variant)
    assert config.variant == variant
    assert config_from_dict(config.model_dump(mode="json")) == config


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_shapes_of_codes_and_reconstructions(variant: str, images: torch.Tensor) -> None:
    model = small_model(variant)
    batch = images[:6]
    codes = model.embed(batch)
    assert codes.shape == (6, model.config.code_dim) and codes.dtype == torch.float32
    reconstruction = model.reconstruct(batch)
    assert reconstruction.shape == (6, 28, 28)
    assert float(reconstruction.min()) >= 0 and float(reconstruction.max()) <= 1
    losses = model.loss(model.prepare(batch))
    assert "loss" in losses and losses["loss"].ndim == 0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_one_step_changes_the_weights(variant: str, images: torch.Tensor) -> None:
    model = small_model(variant, epochs=1)
    before = [t.clone() for t in model.state_dict().values()]
    train(model, images[:64], max_steps=1)
    after = list(model.state_dict().values())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_loss_falls_over_a_few_dozen_steps(variant: str, images: torch.Tensor) -> None:
    model = small_model(variant, epochs=3)
    result = train(model, images)  # 16 steps per epoch: 48 steps
    assert result.epoch_losses[-1] < result.epoch_losses[0], result.epoch_losses


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_save_and_load_give_identical_codes(variant: str, images: torch.Tensor, tmp_path: Path) -> None:
    model = small_model(variant, epochs=1)
    train(model, images[:64], max_steps=2)
    record = save_model(model, tmp_path)
    loaded, _ = load_model(tmp_path / record.version)
    assert torch.equal(model.embed(images[:8]), loaded.embed(images[:8]))


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"variant": "vanilla", "code_dim": 0}, "code_dim"),
        ({"variant": "l2", "l2_lambda": -1}, "l2_lambda"),
        ({"variant": "sparse", "sparsity_target": 1.5}, "sparsity_target"),
        ({"variant": "denoising", "corruption": "fog"}, "corruption"),
        ({"variant": "conv", "epochs": 3}, "epochs"),
        ({"variant": "lstm", "future_frames": 3}, "future_frames"),
        ({"variant": "sparse", "code_activation": "relu"}, "sparsity_lambda"),
    ],
)
def test_bad_configs_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        config_from_dict(raw)


def test_unknown_variant_is_named() -> None:
    with pytest.raises(Exception, match="unknown variant 'fancy'"):
        config_from_dict({"variant": "fancy"})
