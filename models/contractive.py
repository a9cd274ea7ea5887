"""Contractive autoencoder (4.3.7.3): L_new = L + lambda * ||J_x(h)||_F^2 (Rifai et al. 2011)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.base import TrainingConfig
from models.dense import DenseConfig


class ContractiveConfig(DenseConfig):
    """One sigmoid layer (closed-form Jacobian); with `hidden` layers the penalty uses autograd."""

    variant: Literal["contractive"] = "contractive"
    code_dim: int = Field(32, ge=1, le=4096, description="Hidden units.")
    contractive_lambda: float = Field(0.1, ge=0, description="lambda of the Jacobian penalty.")
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=10, lr=3e-3))
