"""Training distortions: small, seeded, ink-preserving; and the conv config that trains on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from models.data.augment import ELASTIC_PEAK, distort, elastic_field, random_affine, random_stroke_width
from models.registry import build_model, config_from_dict
from models.variants.conv import ConvAutoencoder


def _digits(full_mnist: dict) -> torch.Tensor:
    images = torch.from_numpy(np.array(full_mnist["train"].images[:64]))
    return images.unsqueeze(1).float().div(127.5).sub(1.0)


def test_distortions_keep_range_background_and_most_ink(full_mnist: dict) -> None:
    x = _digits(full_mnist)
    torch.manual_seed(0)
    views = distort(x)
    assert views.shape == x.shape and views.min() >= -1.0 - 1e-6 and views.max() <= 1.0 + 1e-6
    blank = -torch.ones(4, 1, 28, 28)
    assert torch.equal(random_affine(blank), blank) and torch.equal(random_stroke_width(blank), blank)
    ink, moved = (x + 1).sum(dim=(1, 2, 3)), (random_affine(x) + 1).sum(dim=(1, 2, 3))
    assert ((moved / ink) > 0.6).all()  # at most 12 degrees, 12 % and 1.4 px: the digit stays in frame
    assert not torch.allclose(views, x)


def test_stroke_width_views_thin_and_thicken_within_the_digit(full_mnist: dict) -> None:
    x = _digits(full_mnist)
    torch.manual_seed(1)
    views = random_stroke_width(x)
    ink, changed = (x + 1).sum(dim=(1, 2, 3)), (views + 1).sum(dim=(1, 2, 3))
    thinner, thicker = changed < ink * 0.95, changed > ink * 1.05
    assert thinner.sum() >= 15 and thicker.sum() >= 15  # two fifths of the batch each, give or take
    assert (changed > 0).all()  # a thinned digit keeps some ink
    # Thinning never inks the background; thinned strokes are brightened back to full ink.
    assert ((views > -1) <= (x > -1))[thinner].all()
    assert (views[thinner].flatten(1).amax(dim=1) > 0.99).float().mean() > 0.7


def test_distortions_are_seeded(full_mnist: dict) -> None:
    x = _digits(full_mnist)
    torch.manual_seed(3)
    first = distort(x)
    torch.manual_seed(3)
    assert torch.equal(distort(x), first)


def test_conv_with_augment_trains_on_views_and_evaluates_on_clean_images(full_mnist: dict) -> None:
    model = build_model(
        config_from_dict(
            {"variant": "conv", "channels": [8, 8, 8], "augment": True, "consistency": 0.5, "contrastive": 0.25}
        )
    )
    assert isinstance(model, ConvAutoencoder)
    x = _digits(full_mnist)
    model.train()
    with torch.no_grad():
        parts = model.loss(x)
    assert set(parts) == {"loss", "reconstruction", "consistency", "contrastive"}
    weighted = parts["reconstruction"] + 0.5 * parts["consistency"] + 0.25 * parts["contrastive"]
    assert parts["loss"] == pytest.approx(float(weighted), rel=1e-5)
    model.eval()
    with torch.no_grad():
        assert set(model.loss(x)) == {"loss", "reconstruction"}  # evaluation reconstructs the clean image


def test_the_vae_refuses_distorted_views() -> None:
    with pytest.raises(ValidationError, match="distorted views"):
        config_from_dict({"variant": "conv_vae", "augment": True})


def test_elastic_fields_are_smooth_and_reach_their_peak_displacement() -> None:
    torch.manual_seed(0)
    field = elastic_field(16, 28, 28)  # grid units: 2 spans the 28 pixels
    assert field.shape == (16, 28, 28, 2)
    pixels = field * 14.0
    peaks = pixels.abs().flatten(1, 2).amax(dim=1)  # (16, 2): each image's x and y fields
    assert torch.allclose(peaks, torch.full_like(peaks, ELASTIC_PEAK), atol=1e-4)
    # Smooth: neighbouring pixels move almost together (white noise would differ by about the peak).
    step = (pixels[:, 1:, :, :] - pixels[:, :-1, :, :]).abs().mean()
    assert step < 0.1 * ELASTIC_PEAK
    torch.manual_seed(0)
    assert torch.equal(elastic_field(16, 28, 28), field)
