"""The traced query encoder: the same codes as eager encoding, or eager encoding itself."""

import pytest
import torch

from models.base import Autoencoder
from models.data.augment import thicker, thinner
from models.frozen import frozen_embed
from models.registry import VARIANTS, build_model, default_config
from models.variants.conv import ConvAutoencoder


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_frozen_codes_equal_eager_codes_for_every_variant(variant: str) -> None:
    torch.manual_seed(0)
    model = build_model(default_config(variant))
    embed = frozen_embed(model)
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    assert torch.allclose(embed(images), model.embed(images), atol=1e-4)
    assert embed(images[:1]).shape == (1, model.config.code_dim)


def test_the_stroke_pooled_conv_code_is_traced_and_is_the_mean_of_three_views() -> None:
    torch.manual_seed(0)
    model = build_model(default_config("conv"))
    assert isinstance(model, ConvAutoencoder) and model.config.stroke_pooled_code
    embed = frozen_embed(model)
    assert embed is not model.embed  # one traced graph, views included
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    x = model.prepare(images)
    with torch.no_grad():
        views = [model.encode(view) for view in (x, (x + thicker(x)) / 2, (x + thinner(x)) / 2)]
    expected = torch.stack(views).mean(dim=0)
    assert torch.allclose(model.embed(images), expected, atol=1e-5)
    assert torch.allclose(embed(images), expected, atol=1e-4)


def test_an_untraceable_model_keeps_eager_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model(default_config("conv"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("tracing is not available")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    assert frozen_embed(model) == model.embed


def test_a_trace_that_changes_the_codes_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model(default_config("conv"))
    original = Autoencoder.embed

    def shifted(self: Autoencoder, images: torch.Tensor) -> torch.Tensor:
        return original(self, images) + 1.0  # what eager encoding says now differs from the trace

    monkeypatch.setattr(type(model), "embed", shifted)
    assert frozen_embed(model) == model.embed
