"""Sparse autoencoder (4.3.7.2): L_new = L + lambda * sum_j KL(rho || rho_hat_j)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.base import TrainingConfig
from models.dense import DenseConfig


class SparseConfig(DenseConfig):
    """A wide sigmoid code whose units are pushed to a mean activation of rho."""

    variant: Literal["sparse"] = "sparse"
    code_dim: int = Field(64, ge=1, le=4096, description="Hidden units, most of them inactive per input.")
    sparsity_lambda: float = Field(3.0, ge=0, description="lambda (beta = 3 in Ng's notes).")
    sparsity_target: float = Field(0.05, gt=0, lt=1, description="rho, the target mean activation.")
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=10, lr=3e-3))
