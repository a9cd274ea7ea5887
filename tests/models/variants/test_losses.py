import math

import pytest
import torch
from torch import nn

from models.data.corruption import corrupt
from models.registry import config_from_dict
from models.variants.dense import DenseAutoencoder
from models.variants.losses import (
    contractive_autograd,
    contractive_sigmoid_layer,
    info_nce_euclidean,
    sparsity_kl,
    weight_decay,
)


def test_weight_decay_sums_squared_weights_not_biases() -> None:
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        layer.bias.fill_(100.0)
    assert weight_decay([layer, nn.ReLU()]).item() == pytest.approx(1 + 4 + 0.25 + 9)


def test_info_nce_euclidean_matches_the_formula_by_hand() -> None:
    first = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    second = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    temperature = 0.5

    def side(a: torch.Tensor, b: torch.Tensor) -> float:
        # Mean over rows of -log softmax of -|a_i - b_j|^2 / T at the matching j.
        total = 0.0
        for i in range(len(a)):
            logits = [-float(((a[i] - b[j]) ** 2).sum()) / temperature for j in range(len(b))]
            total -= logits[i] - math.log(sum(math.exp(value) for value in logits))
        return total / len(a)

    expected = 0.5 * (side(first, second) + side(second, first))
    assert info_nce_euclidean(first, second, temperature).item() == pytest.approx(expected, rel=1e-6)
    apart = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    assert info_nce_euclidean(apart, apart, 1.0).item() == pytest.approx(0.0, abs=1e-6)  # pairs found, others far


def test_sparsity_kl_matches_the_formula_by_hand() -> None:
    activations = torch.tensor([[0.1, 0.5], [0.3, 0.7]])  # rho_hat = (0.2, 0.6)
    rho = 0.05

    def kl(rho_hat: float) -> float:
        return rho * math.log(rho / rho_hat) + (1 - rho) * math.log((1 - rho) / (1 - rho_hat))

    assert sparsity_kl(activations, rho).item() == pytest.approx(kl(0.2) + kl(0.6), rel=1e-6)
    assert sparsity_kl(torch.full((4, 3), rho), rho).item() == pytest.approx(0.0, abs=1e-7)


def test_closed_form_contractive_penalty_matches_the_jacobian() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(6, 4)
    x = torch.rand(3, 6)
    hidden = torch.sigmoid(layer(x))
    closed = contractive_sigmoid_layer(hidden, layer.weight)
    for row in range(3):
        jacobian = torch.autograd.functional.jacobian(lambda v: torch.sigmoid(layer(v)), x[row])
        assert closed[row].item() == pytest.approx(jacobian.pow(2).sum().item(), rel=1e-5)


def test_autograd_contractive_penalty_matches_the_jacobian_of_a_deep_encoder() -> None:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3), nn.Sigmoid())
    x = torch.rand(4, 5)
    penalty = contractive_autograd(encoder, x)
    for row in range(4):
        jacobian = torch.autograd.functional.jacobian(lambda v: encoder(v.unsqueeze(0)).squeeze(0), x[row])
        assert penalty[row].item() == pytest.approx(jacobian.pow(2).sum().item(), rel=1e-5)


def test_contractive_model_uses_closed_form_for_one_sigmoid_layer() -> None:
    model = DenseAutoencoder(config_from_dict({"variant": "contractive", "code_dim": 5}))
    x = torch.rand(3, 784)
    code = model.encode(x)
    assert torch.allclose(model.contractive_penalty(x, code), contractive_autograd(model.encoder, x), rtol=1e-4)


def test_each_regulariser_adds_its_named_term() -> None:
    x = torch.rand(8, 784)
    parts = DenseAutoencoder(
        config_from_dict(
            {
                "variant": "vanilla",
                "code_activation": "sigmoid",
                "l2_lambda": 0.1,
                "sparsity_lambda": 1.0,
                "contractive_lambda": 0.5,
            }
        )
    ).loss(x)
    assert set(parts) == {"loss", "reconstruction", "l2", "sparsity", "contractive"}
    total = parts["reconstruction"] + parts["l2"] + parts["sparsity"] + parts["contractive"]
    assert parts["loss"].item() == pytest.approx(total.item(), rel=1e-6)


def test_corruptions() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.full((200, 784), 0.5)
    masked = corrupt(x, "masking", 0.3, generator)
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    salted = corrupt(x, "salt_pepper", 0.2, generator)
    hit = salted != 0.5
    assert hit.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(salted[hit].unique().tolist()) == {0.0, 1.0}
    noisy = corrupt(x, "gaussian", 0.1, generator)
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert (noisy - x).std().item() == pytest.approx(0.1, abs=0.01)
    assert torch.equal(corrupt(x, "none", 0.5), x)


def test_noise_transfer_is_one_for_identity_and_zero_for_a_constant() -> None:
    from models.training.diagnostics import noise_transfer

    class Identity(DenseAutoencoder):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    class Constant(DenseAutoencoder):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full_like(x, 0.5)

    images = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8)
    config = config_from_dict({"variant": "vanilla", "code_dim": 4})
    assert noise_transfer(Identity(config), images)["noise_kept"] == pytest.approx(1.0, abs=1e-5)
    assert noise_transfer(Constant(config), images)["noise_kept"] == pytest.approx(0.0, abs=1e-6)
