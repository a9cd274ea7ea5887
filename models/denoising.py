"""Denoising autoencoder (4.3.5): trained to rebuild the clean input from a corrupted one.

Works overcomplete (code_dim >= 784, 4.3.5.1), where a plain autoencoder can learn the
identity; `aeseek bench overcomplete` measures how much of an input's noise each keeps.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.base import TrainingConfig
from models.corruption import Corruption
from models.dense import DenseConfig


class DenoisingConfig(DenseConfig):
    """Masking noise on 30% of the pixels by default; the loss compares with the clean image."""

    variant: Literal["denoising"] = "denoising"
    code_dim: int = Field(128, ge=1, le=4096, description="Hidden units (>= 784: overcomplete).")
    corruption: Corruption = Field("masking", description="gaussian, masking or salt_pepper.")
    corruption_level: float = Field(0.3, ge=0, le=1, description="Noise std or share of pixels hit.")
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=10, lr=3e-3))
