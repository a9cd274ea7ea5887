import pytest
import torch
from torch import nn

from models.registry import build_model
from models.summary import layer_table
from models.variants.conv import (
    ConvAutoencoder,
    ConvConfig,
    ConvVAEConfig,
    ConvVariationalAutoencoder,
    gaussian_kl,
)


def seed_model() -> ConvAutoencoder:
    return ConvAutoencoder(ConvConfig())


def test_encoder_is_four_3x3_convolutions_with_batchnorm_and_relu_to_256x4x4() -> None:
    model = seed_model()
    convolutions = [m for m in model.e1.trunk.modules() if isinstance(m, nn.Conv2d)]
    assert len(convolutions) == 4
    assert all(conv.kernel_size == (3, 3) for conv in convolutions)
    for block in model.e1.trunk:
        assert [type(layer) for layer in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    assert model.e1.trunk(model.prepare(images)).shape == (3, 256, 4, 4)


def test_code_is_16_dimensional_from_one_fully_connected_layer() -> None:
    model = seed_model()
    assert isinstance(model.e1.head, nn.Linear)
    assert (model.e1.head.in_features, model.e1.head.out_features) == (4096, 16)
    assert model.embed(torch.zeros(5, 28, 28, dtype=torch.uint8)).shape == (5, 16)


def test_decoder_mirrors_the_encoder_with_a_tanh_output() -> None:
    model = seed_model()
    fc = model.decoder.fc[0]
    assert (fc.in_features, fc.out_features) == (16, 4096)
    transposed = [m for m in model.decoder.body.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(transposed) == 4
    # BatchNorm + ReLU after every transposed convolution but the output one, which has tanh.
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.decoder.body.modules()) == 3
    assert isinstance(model.decoder.body[-1], nn.Tanh)
    output = model(model.prepare(torch.randint(0, 256, (2, 28, 28), dtype=torch.uint8)))
    assert output.shape == (2, 1, 28, 28)
    assert output.min() >= -1 and output.max() <= 1


def test_no_batchnorm_on_fully_connected_layers() -> None:
    rows = layer_table(seed_model())
    kinds = [row.kind for row in rows]
    for position, kind in enumerate(kinds):
        if kind == "Linear" and position + 1 < len(kinds):
            assert kinds[position + 1] != "BatchNorm1d"


def test_layer_table_has_the_seed_shapes_and_counts_every_parameter() -> None:
    model = seed_model()
    rows = layer_table(model)
    shapes = {row.name: row.output_shape for row in rows}
    assert shapes["e1.trunk.3.0"] == (256, 4, 4)
    assert shapes["e1.head"] == (16,)
    assert shapes["decoder.fc.0"] == (4096,)
    assert shapes["decoder.body.4"] == (1, 28, 28)
    assert sum(row.parameters for row in rows) == model.parameter_count()


def test_inputs_are_scaled_to_minus_one_one() -> None:
    model = seed_model()
    images = torch.tensor([[[0, 255]]], dtype=torch.uint8).expand(1, 28, 2).contiguous()
    prepared = model.prepare(images)
    assert prepared.min().item() == -1.0 and prepared.max().item() == 1.0


def test_relu_code_is_selectable_and_non_negative() -> None:
    model = ConvAutoencoder(ConvConfig(code_activation="relu"))
    codes = model.embed(torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8))
    assert (codes >= 0).all()


def test_conv_vae_has_e2_with_a_linear_head() -> None:
    model = ConvVariationalAutoencoder(ConvVAEConfig())
    assert isinstance(model.e2.activation, nn.Identity)
    losses = model.loss(model.prepare(torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)))
    assert set(losses) == {"loss", "reconstruction", "kl"}
    assert losses["kl"].item() >= 0


def test_gaussian_kl_matches_a_monte_carlo_estimate() -> None:
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[0.2, -0.7, 0.4]])
    std = torch.exp(0.5 * logvar)
    samples = mu + std * torch.randn(400_000, 3)
    q = torch.distributions.Normal(mu, std)
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    estimate = (q.log_prob(samples) - p.log_prob(samples)).sum(dim=1).mean()
    assert gaussian_kl(mu, logvar).item() == pytest.approx(estimate.item(), rel=0.01)
    assert gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0


def test_same_seed_same_initial_weights() -> None:
    a, b = build_model(ConvConfig()), build_model(ConvConfig())
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
