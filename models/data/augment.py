"""Random distortions of digit images for training: what a same-digit upload varies in.

Each image of a batch gets its own small rotation, scale, shear and shift (one affine warp)
bent by a smooth random elastic field, and, for a fifth of the batch each, strokes halfway or
all the way to a 3x3 grey dilation or erosion (eroded strokes brightened again, as
preprocessing brightens a thin pen's faint ink).
Inputs and outputs are (B, 1, 28, 28) tensors in [-1, 1] with -1 as the background,
as `ConvAutoencoder.prepare` makes them. Randomness comes from torch's global generator, so a
seeded training run distorts the same way every time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_ROTATION_DEG = 12.0
SCALE_RANGE = (0.88, 1.12)
MAX_SHEAR = 0.15
MAX_SHIFT = 0.1  # of the half-width: about 1.4 pixels
# Elastic distortion (Simard, Steinkraus & Platt 2003, "Best practices for convolutional neural
# networks applied to visual document analysis", section 2): a random displacement field smoothed
# by a Gaussian of ELASTIC_SIGMA pixels, scaled so its largest displacement is ELASTIC_PEAK pixels.
ELASTIC_SIGMA = 4.0
ELASTIC_PEAK = 4.0


def _uniform(count: int, low: float, high: float) -> Tensor:
    return torch.rand(count) * (high - low) + low


def _gaussian_kernel(sigma: float) -> Tensor:
    radius = int(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()  # (2 * radius + 1,)


def elastic_field(count: int, height: int, width: int) -> Tensor:
    """(count, height, width, 2) smooth random displacements in grid units (-1..1 spans the image),
    each field's largest displacement ELASTIC_PEAK pixels."""
    kernel = _gaussian_kernel(ELASTIC_SIGMA)
    radius = len(kernel) // 2
    field = torch.rand(count * 2, 1, height, width) * 2 - 1  # one x and one y field per image
    field = F.conv2d(F.pad(field, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    field = F.conv2d(F.pad(field, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    field = field / field.flatten(1).abs().amax(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)  # peak 1
    return field.view(count, 2, height, width).permute(0, 2, 3, 1) * (2.0 * ELASTIC_PEAK / width)


def random_affine(x: Tensor) -> Tensor:
    """Each image warped by its own random rotation, scale, shear and shift, bent by its own elastic
    field; the background stays -1."""
    count = x.shape[0]
    angle = _uniform(count, -MAX_ROTATION_DEG, MAX_ROTATION_DEG) * (math.pi / 180.0)
    scale = _uniform(count, *SCALE_RANGE)
    shear = _uniform(count, -MAX_SHEAR, MAX_SHEAR)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + shear, _uniform(count, -MAX_SHIFT, MAX_SHIFT)], dim=1),
            torch.stack([sin, cos, _uniform(count, -MAX_SHIFT, MAX_SHIFT)], dim=1),
        ],
        dim=1,
    ).to(x)  # (B, 2, 3): where each output pixel samples the input
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    grid = grid + elastic_field(count, x.shape[2], x.shape[3]).to(x)
    # Sampled as ink (x + 1 >= 0) so that pixels from outside the image are background.
    return F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0


def thicker(x: Tensor) -> Tensor:
    """Images (B, 1, H, W) on [-1, 1] with every stroke a pixel wider each side (a 3x3 dilation)."""
    return F.max_pool2d(x, 3, stride=1, padding=1)


def thinner(x: Tensor) -> Tensor:
    """Images (B, 1, H, W) on [-1, 1] a pixel thinner each side (a 3x3 erosion), brought back to full
    brightness as preprocessing brings back a thin pen's faint strokes."""
    eroded = (1.0 - F.max_pool2d(-x, 3, stride=1, padding=1)) / 2  # on 0..1
    return (eroded / eroded.amax(dim=(1, 2, 3), keepdim=True).clamp_min(0.2)).clamp(0.0, 1.0) * 2 - 1


def random_stroke_width(x: Tensor) -> Tensor:
    """A fifth of the images each halfway thicker, halfway thinner, thicker, thinner; the rest as they were.

    The full steps (one pixel each side) moved P@10 on re-rendered uploads by about 7 points
    (0.7760 -> 0.8453 before the elastic field, docs/models.md); a thinned stroke keeps its shape
    but loses its saturated core, which preprocessing restores on uploads, so the view gets it back here too.
    """
    choice = torch.randint(0, 5, (x.shape[0],), device=x.device).view(-1, 1, 1, 1)
    dilated, eroded = thicker(x), thinner(x)
    views = torch.where(choice == 4, eroded, x)
    views = torch.where(choice == 3, dilated, views)
    views = torch.where(choice == 2, (x + eroded) / 2, views)
    return torch.where(choice == 1, (x + dilated) / 2, views)


def distort(x: Tensor) -> Tensor:
    """A random view of each image: stroke width, then an affine warp."""
    return random_affine(random_stroke_width(x))
