"""The chapter's convolutional autoencoder for image retrieval (Real-World Example 2).

The seed describes two encoders, E1 and E2, each four 3x3 convolutions with BatchNorm and
ReLU taking a 1x28x28 image to a 256x4x4 tensor, then one fully connected layer to a
16-d code, "with a fully connected layer with linear activation behind E2". Our reading:

* E1 produces the code used for retrieval. The seed puts ReLU on it; `code_activation`
  selects ReLU or a linear code (the default is the one that retrieves better, measured
  by `aeseek eval`; see the README).
* E2 is the second head with a linear output. It is only built when the model is trained
  variationally (`conv_vae`), where E1 gives the mean and E2 the log-variance.

The decoder mirrors the encoder: FC 16 -> 4096 (no BatchNorm, as the seed says BatchNorm is
for convolutions only), reshape to 256x4x4, four transposed convolutions with BatchNorm and
ReLU except the last, which has a tanh output. Inputs are scaled to [-1, 1] to match tanh.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from models.base import Autoencoder, AutoencoderConfig
from models.data.augment import distort, thicker, thinner
from models.variants.losses import gaussian_kl, info_nce_euclidean

TRUNK_SHAPE = (256, 4, 4)
Channels = Annotated[int, Field(ge=1, le=256)]


class ConvConfig(AutoencoderConfig):
    """Config of the seed's convolutional autoencoder (E1 + decoder)."""

    SAVED_WITHOUT: ClassVar[dict[str, Any]] = {"contrastive": 0.0, "stroke_pooled_code": False}

    variant: Literal["conv"] = "conv"
    code_dim: int = Field(16, ge=1, le=4096, description="Size of the code z1 used for retrieval.")
    channels: tuple[Channels, Channels, Channels] = Field(
        (32, 64, 128), description="Channels of the first three convolutions; the fourth has 256."
    )
    code_activation: Literal["linear", "relu"] = Field(
        "linear", description="Activation on the code: the seed's ReLU or linear (measured better)."
    )
    augment: bool = Field(
        True,
        description="Train on randomly distorted views (rotation, scale, shear, shift, elastic field, stroke "
        "width) with the clean image as the reconstruction target, so the code ignores what same-digit uploads vary in "
        "(measured better on every retrieval figure; false is the seed's plain reconstruction).",
    )
    consistency: float = Field(
        0.0, ge=0, description="With augment: weight of a term pulling the codes of two views of an image together."
    )
    contrastive: float = Field(
        0.05,
        ge=0,
        description="With augment: weight of an InfoNCE term on the codes of two views of each image, the rest "
        "of the batch as negatives, similarity minus the squared Euclidean distance (measured better on the "
        "protocol and on the validation split; 0: reconstruction alone).",
    )
    temperature: float = Field(
        0.5,
        gt=0,
        description="Temperature of the contrastive term's logits (0.5 chosen over 1 on the validation split).",
    )
    stroke_pooled_code: bool = Field(
        True,
        description="The retrieval code is the mean of the codes of the image, the image halfway thickened and "
        "halfway thinned (for gallery and query alike), so a pen wider or narrower than MNIST's moves it less.",
    )


def _conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _deconv_block(c_in: int, c_out: int, stride: int, output_padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 3, stride=stride, padding=1, output_padding=output_padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ConvEncoder(nn.Module):
    """Four 3x3 conv + BN + ReLU layers to 256x4x4, then one FC layer to the code."""

    def __init__(self, channels: tuple[int, int, int], code_dim: int, activation: Literal["linear", "relu"]) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.trunk = nn.Sequential(
            _conv_block(1, c1, stride=2),  # (B, c1, 14, 14)
            _conv_block(c1, c2, stride=2),  # (B, c2, 7, 7)
            _conv_block(c2, c3, stride=2),  # (B, c3, 4, 4)
            _conv_block(c3, TRUNK_SHAPE[0], stride=1),  # (B, 256, 4, 4)
        )
        self.head = nn.Linear(TRUNK_SHAPE[0] * 16, code_dim)
        self.activation: nn.Module = nn.ReLU() if activation == "relu" else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.trunk(x).flatten(1)  # (B, 4096)
        return self.activation(self.head(h))  # (B, code_dim)


class ConvDecoder(nn.Module):
    """FC code -> 4096, reshape to 256x4x4, four transposed convolutions, tanh output."""

    def __init__(self, channels: tuple[int, int, int], code_dim: int) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.fc = nn.Sequential(nn.Linear(code_dim, TRUNK_SHAPE[0] * 16), nn.ReLU(inplace=True))
        self.body = nn.Sequential(
            _deconv_block(TRUNK_SHAPE[0], c3, stride=1, output_padding=0),  # (B, c3, 4, 4)
            _deconv_block(c3, c2, stride=2, output_padding=0),  # (B, c2, 7, 7)
            _deconv_block(c2, c1, stride=2, output_padding=1),  # (B, c1, 14, 14)
            nn.ConvTranspose2d(c1, 1, 3, stride=2, padding=1, output_padding=1),  # (B, 1, 28, 28)
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(-1, *TRUNK_SHAPE)  # (B, 256, 4, 4)
        return self.body(h)  # (B, 1, 28, 28)


class ConvAutoencoder(Autoencoder):
    """E1 + decoder trained on mean squared error in [-1, 1] pixel space."""

    variant = "conv"
    config: ConvConfig

    def __init__(self, config: ConvConfig) -> None:
        super().__init__(config)
        self.e1 = ConvEncoder(config.channels, config.code_dim, config.code_activation)
        self.decoder = ConvDecoder(config.channels, config.code_dim)

    def prepare(self, images: Tensor) -> Tensor:
        """uint8 (B, 28, 28) -> float (B, 1, 28, 28) in [-1, 1]."""
        return images.unsqueeze(1).float().div(127.5).sub(1.0)

    def to_unit(self, output: Tensor) -> Tensor:
        return output.squeeze(1).add(1.0).mul(0.5).clamp(0.0, 1.0)

    def encode(self, x: Tensor) -> Tensor:
        return self.e1(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def retrieval_code(self, x: Tensor) -> Tensor:
        if not self.config.stroke_pooled_code:
            return self.encode(x)
        # Test-time augmentation over stroke width, one forward pass for the three views.
        views = torch.cat([x, (x + thicker(x)) / 2, (x + thinner(x)) / 2])
        return self.encode(views).view(3, -1, self.config.code_dim).mean(dim=0)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        if not (self.training and self.config.augment):
            reconstruction = F.mse_loss(self(x), x)
            return {"loss": reconstruction, "reconstruction": reconstruction}
        # Denoising-style training on distortions: a distorted view in, the clean image out.
        code = self.encode(distort(x))
        reconstruction = F.mse_loss(self.decode(code), x)
        parts = {"reconstruction": reconstruction}
        total = reconstruction
        if self.config.consistency > 0 or self.config.contrastive > 0:
            other = self.encode(distort(x))
            if self.config.consistency > 0:
                agreement = F.mse_loss(code, other)
                parts["consistency"] = agreement
                total = total + self.config.consistency * agreement
            if self.config.contrastive > 0:
                contrast = info_nce_euclidean(code, other, self.config.temperature)
                parts["contrastive"] = contrast
                total = total + self.config.contrastive * contrast
        return {"loss": total, **parts}


class ConvVAEConfig(ConvConfig):
    """Config of the variational reading of the seed: E1 gives the mean, E2 the log-variance."""

    variant: Literal["conv_vae"] = "conv_vae"  # type: ignore[assignment]
    code_activation: Literal["linear", "relu"] = Field(
        "linear", description="Activation on E1's mean code (linear is the usual choice)."
    )
    beta: float = Field(1.0, ge=0, description="Weight of the KL term (beta-VAE; 1 is the plain VAE).")
    augment: bool = Field(False, description="Not for the VAE: its loss has no distorted views.")
    contrastive: float = Field(0.0, ge=0, description="Not for the VAE: its loss has no distorted views.")
    stroke_pooled_code: bool = Field(False, description="As conv's; off, as the VAE was measured without it.")

    @model_validator(mode="after")
    def _no_distorted_views(self) -> ConvVAEConfig:
        if self.augment or self.consistency or self.contrastive:
            raise ValueError("augment, consistency and contrastive are conv's: the VAE's loss has no distorted views")
        return self


class ConvVariationalAutoencoder(ConvAutoencoder):
    """E1 (mean) + E2 (log-variance, linear head) + decoder, trained as a VAE."""

    variant = "conv_vae"
    config: ConvVAEConfig

    def __init__(self, config: ConvVAEConfig) -> None:
        super().__init__(config)
        self.e2 = ConvEncoder(config.channels, config.code_dim, "linear")

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        mu, logvar = self.e1(x), self.e2(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation trick
        pixels = x[0].numel()
        # Per-pixel MSE scaled to a per-image sum so the KL weight means what beta says.
        reconstruction = F.mse_loss(self.decode(z), x, reduction="sum") / x.shape[0]
        kl = gaussian_kl(mu, logvar).mean()
        loss = (reconstruction + self.config.beta * kl) / pixels
        return {"loss": loss, "reconstruction": reconstruction / pixels, "kl": kl}
