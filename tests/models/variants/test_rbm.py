"""Restricted Boltzmann machines: free energy and contrastive divergence."""

import itertools

import pytest
import torch

from models.data.mnist import MnistSplit
from models.variants.rbm import RBM


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
