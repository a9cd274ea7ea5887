"""Vanilla autoencoder (4.3.1): one hidden layer, 784 -> d -> 784, logistic output."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.base import TrainingConfig
from models.dense import Activation, DenseConfig


class VanillaConfig(DenseConfig):
    """The code is the single hidden layer: f(Wx + b) then g(W* h + c)."""

    variant: Literal["vanilla"] = "vanilla"
    code_dim: int = Field(32, ge=1, le=4096, description="d, the hidden layer's size.")
    # The chapter's logistic f is one choice; with Adam, a 32-unit sigmoid layer saturated in our
    # runs (the codes barely varied and the output stayed near the mean digit), so ReLU is the default.
    code_activation: Activation = Field("relu", description="f, the hidden layer's activation.")
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=10, lr=3e-3))
