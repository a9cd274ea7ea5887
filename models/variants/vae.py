"""Variational autoencoder (4.3.7.4; Kingma & Welling 2014) with fully connected layers.

The encoder outputs a mean and a log-variance per latent unit; a code is sampled as
mu + sigma * eps with eps ~ N(0, I) (reparameterisation), and the loss is the reconstruction
cross-entropy (or squared error) plus beta * KL(q(z|x) || N(0, I)). The retrieval code is mu.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from models.base import Autoencoder, AutoencoderConfig, HiddenLayers, TrainingConfig
from models.variants.dense import PIXELS, mlp
from models.variants.losses import gaussian_kl, reconstruction_loss


class VAEConfig(AutoencoderConfig):
    """784 -> 512 -> (mu, log sigma^2) of 16 -> 512 -> 784 by default."""

    variant: Literal["vae"] = "vae"
    hidden: HiddenLayers = Field(default_factory=lambda: [512], description="Encoder hidden sizes (mirrored).")
    reconstruction: Literal["mse", "bce"] = Field("bce", description="Reconstruction term, summed over pixels.")
    beta: float = Field(1.0, ge=0, description="Weight of the KL term (beta-VAE; 1 is the plain VAE).")
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=10, lr=2e-3))


class VariationalAutoencoder(Autoencoder):
    """Gaussian encoder, Bernoulli (logistic) decoder."""

    variant = "vae"
    config: VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        sizes = [PIXELS, *config.hidden]
        self.trunk = mlp(sizes, "relu", "relu") if config.hidden else nn.Identity()
        width = sizes[-1]
        self.mu = nn.Linear(width, config.code_dim)
        self.logvar = nn.Linear(width, config.code_dim)
        self.decoder = mlp([config.code_dim, *reversed(config.hidden), PIXELS], "relu", "linear")

    def prepare(self, images: Tensor) -> Tensor:
        return images.reshape(images.shape[0], PIXELS).float().div(255.0)

    def to_unit(self, output: Tensor) -> Tensor:
        return output.reshape(-1, 28, 28).clamp(0.0, 1.0)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z|x)."""
        h = self.trunk(x)
        return self.mu(h), self.logvar(h)

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        reconstruction = reconstruction_loss(self.config.reconstruction, self.decoder(z), x)
        kl = gaussian_kl(mu, logvar).mean()
        return {"loss": reconstruction + self.config.beta * kl, "reconstruction": reconstruction, "kl": kl}
