"""Fully connected autoencoders (4.3.1-4.3.2, 4.3.5, 4.3.7) and their shared options.

One model class, `DenseAutoencoder`, covers the chapter's dense family: the variant configs
in `vanilla.py`, `multilayer.py`, `denoising.py`, `l2.py`, `sparse.py` and `contractive.py`
only choose different defaults. Every regulariser and the input corruption are options of
every dense variant, so "a sparse denoising multilayer autoencoder" is one config away.

Inputs are flattened [0, 1] pixels (784,), the output layer is logistic. The reconstruction
loss is summed over the 784 pixels and averaged over the batch (as in the chapter's formulas
and Ng's notes), so the regularisers' lambdas mean what they do in the literature.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from models.base import Autoencoder, AutoencoderConfig
from models.corruption import Corruption, corrupt
from models.regularizers import contractive_autograd, contractive_sigmoid_layer, sparsity_kl, weight_decay

PIXELS = 28 * 28
Activation = Literal["sigmoid", "relu", "tanh", "linear"]
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "linear": nn.Identity,
}


class DenseConfig(AutoencoderConfig):
    """Options shared by every fully connected variant."""

    hidden: list[int] = Field(
        default_factory=list, description="Encoder hidden layer sizes between input and code (mirrored)."
    )
    activation: Activation = Field("relu", description="Activation of the hidden layers.")
    code_activation: Activation = Field("sigmoid", description="Activation of the code layer.")
    reconstruction: Literal["mse", "bce"] = Field(
        "bce", description="Squared error or cross-entropy (4.3.1.2), summed over pixels."
    )
    l2_lambda: float = Field(0.0, ge=0, description="Weight decay: lambda * sum of squared weights (4.3.7.1).")
    sparsity_lambda: float = Field(0.0, ge=0, description="Weight of sum_j KL(rho || rho_hat_j) (4.3.7.2).")
    sparsity_target: float = Field(0.05, gt=0, lt=1, description="rho, the target mean activation.")
    contractive_lambda: float = Field(0.0, ge=0, description="Weight of ||J_x(h)||_F^2 (4.3.7.3).")
    corruption: Corruption = Field("none", description="Input noise of denoising training (4.3.5).")
    corruption_level: float = Field(
        0.3, ge=0, le=1, description="Noise std (gaussian) or share of pixels hit (masking, salt_pepper)."
    )

    @model_validator(mode="after")
    def _sparsity_needs_sigmoid_code(self) -> DenseConfig:
        if self.sparsity_lambda > 0 and self.code_activation != "sigmoid":
            raise ValueError("sparsity_lambda > 0 needs code_activation 'sigmoid' (activations in (0, 1))")
        if any(size < 1 for size in self.hidden):
            raise ValueError("hidden layer sizes must be at least 1")
        return self


def mlp(sizes: list[int], activation: Activation, last_activation: Activation) -> nn.Sequential:
    """Linear layers through `sizes`, `activation` between them and `last_activation` at the end."""
    layers: list[nn.Module] = []
    for position, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        last = position == len(sizes) - 2
        layers.append(ACTIVATIONS[last_activation if last else activation]())
    return nn.Sequential(*layers)


def reconstruction_loss(kind: str, logits: Tensor, target: Tensor) -> Tensor:
    """Per-image summed reconstruction loss, averaged over the batch."""
    if kind == "bce":
        total = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    else:
        total = F.mse_loss(torch.sigmoid(logits), target, reduction="sum")
    return total / target.shape[0]


class DenseAutoencoder(Autoencoder):
    """784 -> hidden... -> code -> ...hidden -> 784 with a logistic output."""

    variant = "dense"
    config: DenseConfig

    def __init__(self, config: DenseConfig) -> None:
        super().__init__(config)
        sizes = [PIXELS, *config.hidden, config.code_dim]
        self.encoder = mlp(sizes, config.activation, config.code_activation)
        # The last decoder layer outputs logits; `decode` applies the logistic output.
        self.decoder = mlp(list(reversed(sizes)), config.activation, "linear")

    def prepare(self, images: Tensor) -> Tensor:
        """uint8 (B, 28, 28) -> float (B, 784) in [0, 1]."""
        return images.reshape(images.shape[0], PIXELS).float().div(255.0)

    def to_unit(self, output: Tensor) -> Tensor:
        return output.reshape(-1, 28, 28).clamp(0.0, 1.0)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode_logits(self, z: Tensor) -> Tensor:
        """Decoder output before the logistic function."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        config = self.config
        noisy = corrupt(x, config.corruption, config.corruption_level) if config.corruption != "none" else x
        code = self.encode(noisy)
        parts = {"reconstruction": reconstruction_loss(config.reconstruction, self.decode_logits(code), x)}
        if config.l2_lambda > 0:
            parts["l2"] = config.l2_lambda * weight_decay(self.modules())
        if config.sparsity_lambda > 0:
            parts["sparsity"] = config.sparsity_lambda * sparsity_kl(code, config.sparsity_target)
        if config.contractive_lambda > 0:
            parts["contractive"] = config.contractive_lambda * self.contractive_penalty(noisy, code).mean()
        parts["loss"] = torch.stack(list(parts.values())).sum()
        return parts

    def contractive_penalty(self, x: Tensor, code: Tensor) -> Tensor:
        """||J_x(h)||_F^2 per row: closed form for one sigmoid layer, autograd otherwise."""
        if not self.config.hidden and self.config.code_activation == "sigmoid":
            linear = self.encoder[0]
            assert isinstance(linear, nn.Linear)
            return contractive_sigmoid_layer(code, linear.weight)
        return contractive_autograd(self.encoder, x)
