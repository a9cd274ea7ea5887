"""Fully connected autoencoders (4.3.1-4.3.2, 4.3.5, 4.3.7) and their shared options.

One model class, `DenseAutoencoder`, covers the chapter's dense family: the six variant
configs at the end of this file (vanilla, multilayer, denoising, l2, sparse, contractive)
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
from pydantic import Field, model_validator
from torch import Tensor, nn

from models.base import Autoencoder, AutoencoderConfig, HiddenLayers, TrainingConfig
from models.data.corruption import Corruption, corrupt
from models.variants.losses import (
    contractive_autograd,
    contractive_sigmoid_layer,
    reconstruction_loss,
    sparsity_kl,
    weight_decay,
)

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

    hidden: HiddenLayers = Field(
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
        return self


def mlp(sizes: list[int], activation: Activation, last_activation: Activation) -> nn.Sequential:
    """Linear layers through `sizes`, `activation` between them and `last_activation` at the end."""
    layers: list[nn.Module] = []
    for position, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        last = position == len(sizes) - 2
        layers.append(ACTIVATIONS[last_activation if last else activation]())
    return nn.Sequential(*layers)


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


# The chapter's dense variants: each only sets its own defaults on DenseConfig.
def _training(epochs: int, lr: float) -> TrainingConfig:
    return TrainingConfig(epochs=epochs, lr=lr)


# Vanilla autoencoder (4.3.1): one hidden layer, 784 -> d -> 784, logistic output.
class VanillaConfig(DenseConfig):
    """The code is the single hidden layer: f(Wx + b) then g(W* h + c)."""

    variant: Literal["vanilla"] = "vanilla"
    code_dim: int = Field(32, ge=1, le=4096, description="d, the hidden layer's size.")
    # The chapter's logistic f is one choice; with Adam, a 32-unit sigmoid layer saturated in our
    # runs (the codes barely varied and the output stayed near the mean digit), so ReLU is the default.
    code_activation: Activation = Field("relu", description="f, the hidden layer's activation.")
    training: TrainingConfig = Field(default_factory=lambda: _training(10, 3e-3))


# Multilayer autoencoder (4.3.2): a symmetric MLP with the code in the middle.
class MultilayerConfig(DenseConfig):
    """784 -> 512 -> 128 -> 16 -> 128 -> 512 -> 784 by default, trained end to end."""

    variant: Literal["multilayer"] = "multilayer"
    hidden: HiddenLayers = Field(default_factory=lambda: [512, 128], description="Encoder hidden sizes (mirrored).")
    code_activation: Activation = Field("linear", description="Activation of the code layer.")
    training: TrainingConfig = Field(default_factory=lambda: _training(10, 2e-3))


# Denoising autoencoder (4.3.5): trained to rebuild the clean input from a corrupted one. It works
# overcomplete (code_dim >= 784, 4.3.5.1), where a plain autoencoder can learn the identity;
# `aeseek bench overcomplete` measures how much of an input's noise each keeps.
class DenoisingConfig(DenseConfig):
    """Masking noise on 30% of the pixels by default; the loss compares with the clean image."""

    variant: Literal["denoising"] = "denoising"
    code_dim: int = Field(128, ge=1, le=4096, description="Hidden units (>= 784: overcomplete).")
    corruption: Corruption = Field("masking", description="gaussian, masking or salt_pepper.")
    corruption_level: float = Field(0.3, ge=0, le=1, description="Noise std or share of pixels hit.")
    training: TrainingConfig = Field(default_factory=lambda: _training(10, 3e-3))


# Weight-decay autoencoder (4.3.7.1): L_new = L + lambda * sum_j w_j^2.
class L2Config(MultilayerConfig):
    """The multilayer autoencoder with the chapter's L2 penalty switched on."""

    variant: Literal["l2"] = "l2"  # type: ignore[assignment]
    l2_lambda: float = Field(1e-3, ge=0, description="lambda of lambda * sum of squared weights.")


# Sparse autoencoder (4.3.7.2): L_new = L + lambda * sum_j KL(rho || rho_hat_j).
class SparseConfig(DenseConfig):
    """A wide sigmoid code whose units are pushed to a mean activation of rho."""

    variant: Literal["sparse"] = "sparse"
    code_dim: int = Field(64, ge=1, le=4096, description="Hidden units, most of them inactive per input.")
    sparsity_lambda: float = Field(3.0, ge=0, description="lambda (beta = 3 in Ng's notes).")
    sparsity_target: float = Field(0.05, gt=0, lt=1, description="rho, the target mean activation.")
    training: TrainingConfig = Field(default_factory=lambda: _training(10, 3e-3))


# Contractive autoencoder (4.3.7.3): L_new = L + lambda * ||J_x(h)||_F^2 (Rifai et al. 2011).
class ContractiveConfig(DenseConfig):
    """One sigmoid layer (closed-form Jacobian); with `hidden` layers the penalty uses autograd."""

    variant: Literal["contractive"] = "contractive"
    code_dim: int = Field(32, ge=1, le=4096, description="Hidden units.")
    contractive_lambda: float = Field(0.1, ge=0, description="lambda of the Jacobian penalty.")
    training: TrainingConfig = Field(default_factory=lambda: _training(10, 3e-3))
