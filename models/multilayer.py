"""Multilayer autoencoder (4.3.2): a symmetric MLP with the code in the middle."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.base import TrainingConfig
from models.dense import Activation, DenseConfig


class MultilayerConfig(DenseConfig):
    """784 -> 512 -> 128 -> 16 -> 128 -> 512 -> 784 by default, trained end to end."""

    variant: Literal["multilayer"] = "multilayer"
    hidden: list[int] = Field(default_factory=lambda: [512, 128], description="Encoder hidden sizes (mirrored).")
    code_activation: Activation = Field("linear", description="Activation of the code layer.")
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=10, lr=2e-3))
