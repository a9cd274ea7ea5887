"""Weight-decay autoencoder (4.3.7.1): L_new = L + lambda * sum_j w_j^2."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.multilayer import MultilayerConfig


class L2Config(MultilayerConfig):
    """The multilayer autoencoder with the chapter's L2 penalty switched on."""

    variant: Literal["l2"] = "l2"  # type: ignore[assignment]
    l2_lambda: float = Field(1e-3, ge=0, description="lambda of lambda * sum of squared weights.")
