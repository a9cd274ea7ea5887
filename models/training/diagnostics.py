"""Measurements of what a trained autoencoder does to its inputs."""

from __future__ import annotations

import torch
from torch import Tensor

from models.base import Autoencoder
from models.data.corruption import Corruption, corrupt


@torch.no_grad()
def noise_transfer(
    model: Autoencoder, images: Tensor, kind: Corruption = "gaussian", level: float = 0.3, seed: int = 0
) -> dict[str, float]:
    """How much of an input's noise survives to the output (the identity test of 4.3.5.1).

    `noise_kept` = ||f(x~) - f(x)||^2 / ||x~ - x||^2 over uint8 images x and corrupted x~:
    1 for a model that copies its input (identity), near 0 for one that removes the noise.
    `denoised_mse` is the mean squared error between f(x~) and the clean x, on [0, 1] pixels.
    """
    clean = images.float().div(255.0)
    noisy = corrupt(clean, kind, level, torch.Generator().manual_seed(seed))
    noisy_images = noisy.mul(255.0).round().to(torch.uint8)
    noisy = noisy_images.float().div(255.0)  # what the model actually receives
    clean_output, noisy_output = model.reconstruct(images), model.reconstruct(noisy_images)
    input_change = (noisy - clean).pow(2).sum()
    output_change = (noisy_output - clean_output).pow(2).sum()
    return {
        "noise_kept": float(output_change / input_change),
        "denoised_mse": float((noisy_output - clean).pow(2).mean()),
        "noisy_input_mse": float((noisy - clean).pow(2).mean()),
    }
