"""Moving MNIST (Srivastava et al. 2015): two digits bouncing inside 64x64 frames.

Generated from MNIST digits, deterministically for a given seed: each digit starts at a
random position with a random direction and constant speed, and reflects off the edges.
Overlaps combine by maximum, as in the original data set.
"""

from __future__ import annotations

import torch
from torch import Tensor

FRAME = 64
DIGIT = 28
SPAN = FRAME - DIGIT  # positions 0..36 keep the digit inside the frame


def trajectories(count: int, frames: int, generator: torch.Generator, speed: float = 3.0) -> Tensor:
    """Top-left positions (count, frames, 2) of digits bouncing in the frame, as integers."""
    position = torch.rand(count, 2, generator=generator) * SPAN
    angle = torch.rand(count, generator=generator) * 2 * torch.pi
    velocity = torch.stack([torch.sin(angle), torch.cos(angle)], dim=1) * speed
    steps = []
    for _ in range(frames):
        steps.append(position.round().long())
        position = position + velocity
        # Reflect off both walls.
        below, above = position < 0, position > SPAN
        position = torch.where(below, -position, torch.where(above, 2 * SPAN - position, position))
        velocity = torch.where(below | above, -velocity, velocity)
    return torch.stack(steps, dim=1)


def render(digits: Tensor, positions: Tensor) -> Tensor:
    """Frames (count, frames, 64, 64) uint8 with `digits` (count, k, 28, 28) at `positions` (count, k, frames, 2)."""
    count, per_frame, _, _ = digits.shape
    frames = positions.shape[2]
    canvas = torch.zeros(count, frames, FRAME, FRAME, dtype=torch.uint8)
    rows = torch.arange(DIGIT)
    for k in range(per_frame):
        for t in range(frames):
            top, left = positions[:, k, t, 0], positions[:, k, t, 1]
            r = (top[:, None] + rows[None, :])[:, :, None].expand(count, DIGIT, DIGIT)
            c = (left[:, None] + rows[None, :])[:, None, :].expand(count, DIGIT, DIGIT)
            index = torch.arange(count)[:, None, None].expand(count, DIGIT, DIGIT)
            frame = canvas[:, t]
            frame[index, r, c] = torch.maximum(frame[index, r, c], digits[:, k])
    return canvas


def moving_mnist(digits: Tensor, frames: int, generator: torch.Generator) -> Tensor:
    """One sequence per pair (digit i, digit i+1 mod N): uint8 (N, frames, 64, 64)."""
    pairs = torch.stack([digits, digits.roll(-1, dims=0)], dim=1)  # (N, 2, 28, 28)
    count = len(digits)
    positions = trajectories(count * 2, frames, generator).view(count, 2, frames, 2)
    return render(pairs, positions)


def static_sequence(digits: Tensor, frames: int) -> Tensor:
    """Each digit still at the centre of a 64x64 frame, repeated: (N, frames, 64, 64)."""
    canvas = torch.zeros(len(digits), FRAME, FRAME, dtype=torch.uint8)
    offset = SPAN // 2
    canvas[:, offset : offset + DIGIT, offset : offset + DIGIT] = digits
    return canvas[:, None].expand(len(digits), frames, FRAME, FRAME).contiguous()
