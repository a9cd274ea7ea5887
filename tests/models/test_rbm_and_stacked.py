import itertools

import pytest
import torch

from models.loop import Hooks, Progress
from models.mnist import MnistSplit
from models.rbm import RBM
from models.registry import build_model, config_from_dict
from models.stacked import StackedAutoencoder, linear_layers


def test_free_energy_matches_brute_force_enumeration() -> None:
    torch.manual_seed(0)
    rbm = RBM(3, 2)
    with torch.no_grad():
        rbm.weight.normal_(0, 1)
        rbm.visible_bias.normal_(0, 1)
        rbm.hidden_bias.normal_(0, 1)
    states = lambda n: [torch.tensor(s, dtype=torch.float32) for s in itertools.product([0, 1], repeat=n)]  # noqa: E731

    def energy(v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return -(v @ rbm.visible_bias) - (h @ rbm.hidden_bias) - h @ rbm.weight @ v

    with torch.no_grad():
        partition = sum(torch.exp(-energy(v, h)) for v in states(3) for h in states(2))
        for v in states(3):
            marginal = sum(torch.exp(-energy(v, h)) for h in states(2)) / partition
            from_free_energy = torch.exp(-rbm.free_energy(v.unsqueeze(0)))[0] / partition
            assert from_free_energy.item() == pytest.approx(marginal.item(), rel=1e-5)


def test_cd1_lowers_reconstruction_error(full_mnist: dict[str, MnistSplit]) -> None:
    torch.manual_seed(0)
    data = torch.from_numpy(full_mnist["train"].images[:500].reshape(500, -1)).float() / 255
    rbm = RBM(784, 64)
    before = rbm.reconstruction_error(data)
    optimizer = torch.optim.Adam(rbm.parameters(), lr=0.01)
    for _ in range(3):
        for start in range(0, 500, 50):
            optimizer.zero_grad()
            rbm.contrastive_divergence_loss(data[start : start + 50], steps=1).backward()
            optimizer.step()
    assert rbm.reconstruction_error(data) < 0.7 * before


def test_stacked_layers_stay_frozen_while_a_later_one_trains(full_mnist: dict[str, MnistSplit]) -> None:
    model = build_model(
        config_from_dict(
            {"variant": "stacked", "hidden": [32, 16], "code_dim": 8, "layer_epochs": 2, "training": {"batch_size": 64}}
        )
    )
    assert isinstance(model, StackedAutoencoder)
    first = linear_layers(model.encoder)[0]
    snapshots: dict[str, torch.Tensor] = {}

    def watch(progress: Progress) -> None:
        snapshots.setdefault(progress.phase, first.weight.detach().clone())
        snapshots["last"] = first.weight.detach().clone()

    images = torch.from_numpy(full_mnist["train"].images[:256].copy())
    losses = model.pretrain(images, Hooks(on_progress=watch))
    assert list(losses) == ["layer 1/3", "layer 2/3", "layer 3/3"]
    # Layer 1 changed while it trained, then stayed exactly as it was while layers 2 and 3 trained.
    assert not torch.equal(snapshots["layer 1/3"], snapshots["layer 2/3"])
    assert torch.equal(snapshots["layer 2/3"], snapshots["last"])


def test_stacked_without_fine_tuning_skips_end_to_end_training() -> None:
    model = build_model(config_from_dict({"variant": "stacked", "fine_tune": False}))
    assert model.trains_end_to_end is False


def test_deep_autoencoder_is_unrolled_from_its_rbms(full_mnist: dict[str, MnistSplit]) -> None:
    model = build_model(
        config_from_dict(
            {"variant": "deep", "hidden": [32], "code_dim": 4, "rbm_epochs": 1, "training": {"batch_size": 64}}
        )
    )
    images = torch.from_numpy(full_mnist["train"].images[:128].copy())
    losses = model.pretrain(images, Hooks())
    assert "RBM 1/2 (784-32)" in losses and "RBM 2/2 (32-4)" in losses
    encoders, decoders = linear_layers(model.encoder), linear_layers(model.decoder)
    # The decoder mirrors the encoder: transposed weights, in reverse order.
    assert torch.equal(decoders[-1].weight, encoders[0].weight.t())
    assert torch.equal(decoders[0].weight, encoders[1].weight.t())
