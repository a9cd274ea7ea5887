"""Input corruption for denoising autoencoders (Vincent et al. 2010, section 4.1)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Corruption = Literal["none", "gaussian", "masking", "salt_pepper"]


def corrupt(x: Tensor, kind: Corruption, level: float, generator: torch.Generator | None = None) -> Tensor:
    """A corrupted copy of [0, 1] inputs; the clean `x` stays the training target.

    gaussian: add N(0, level^2) noise and clip to [0, 1]; masking: set a `level` share of the
    inputs to 0; salt_pepper: set a `level` share to 0 or 1 with equal chance.
    """
    if kind == "none" or level == 0:
        return x
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return (x + level * noise).clamp(0.0, 1.0)
    hit = torch.rand(x.shape, generator=generator, device=x.device) < level
    if kind == "masking":
        return x.masked_fill(hit, 0.0)
    if kind == "salt_pepper":
        salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
        return torch.where(hit, salt.to(x.dtype), x)
    raise ValueError(f"unknown corruption {kind!r}")
