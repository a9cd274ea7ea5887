"""The small contract every autoencoder in aeseek fulfils, and the config fields they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Annotated, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from models.progress import Hooks

# Bounds that keep one training job within one machine: no field may ask for a model or a
# batch that needs tens of gigabytes (the sizes below, and MAX_PARAMETERS in models/registry.py).
LayerSize = Annotated[int, Field(ge=1, le=4096)]
HiddenLayers = Annotated[list[LayerSize], Field(max_length=6)]


class TrainingConfig(BaseModel):
    """Hyper-parameters of the training loop, shared by every variant."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(6, ge=1, le=200, description="Passes over the training images.")
    batch_size: int = Field(128, ge=1, le=1024, description="Images per optimisation step.")
    lr: float = Field(2e-3, gt=0, le=1.0, description="Peak learning rate of Adam (one-cycle schedule).")
    seed: int = Field(0, ge=0, description="Seed of weights, shuffling and noise: same seed, same model.")
    train_subset: int | None = Field(
        None, ge=1, le=60_000, description="Train on the first N training images only (None: all 60,000)."
    )


class AutoencoderConfig(BaseModel):
    """Fields every variant config has; subclasses add a `variant` literal and their own."""

    model_config = ConfigDict(extra="forbid")

    # Fields added after models were saved without them, with the value such a saved model meant
    # (its gallery was indexed that way), where that differs from the field's default for new models.
    SAVED_WITHOUT: ClassVar[dict[str, Any]] = {}

    variant: str
    code_dim: int = Field(16, ge=1, le=4096, description="Size of the code used for retrieval.")
    training: TrainingConfig = Field(default_factory=TrainingConfig)


class Autoencoder(nn.Module, ABC):
    """An encoder, a decoder and the loss they are trained with.

    Images enter as uint8 (B, 28, 28); `prepare` maps them into the range the model
    was trained on and `to_unit` maps its outputs back to [0, 1] pixels.
    """

    variant: ClassVar[str]

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config

    @abstractmethod
    def encode(self, x: Tensor) -> Tensor:
        """Map prepared images to codes (B, code_dim) used for retrieval."""

    @abstractmethod
    def decode(self, z: Tensor) -> Tensor:
        """Map codes back to images in model space."""

    @abstractmethod
    def prepare(self, images: Tensor) -> Tensor:
        """Turn uint8 images (B, 28, 28) into the model's input tensor."""

    @abstractmethod
    def to_unit(self, output: Tensor) -> Tensor:
        """Turn model outputs into [0, 1] pixel images (B, 28, 28)."""

    @abstractmethod
    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Training loss on a prepared batch: a dict with `loss` and its named parts."""

    @property
    def trains_end_to_end(self) -> bool:
        """Whether the shared loop trains the whole model after `pretrain` (stacked may say no)."""
        return True

    def pretrain(self, images: Tensor, hooks: Hooks) -> dict[str, list[float]]:
        """Greedy or layer-wise pretraining before end-to-end training; most variants have none.

        Returns the loss per epoch of each pretraining phase, by phase name.
        """
        return {}

    def extra_metrics(self, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor]) -> dict[str, Any]:
        """Variant-specific results after training, from (images, labels) of both splits."""
        return {}

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct a prepared batch in model space."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """Codes of uint8 images, in eval mode, as float32 (B, code_dim)."""
        self.eval()
        return self.retrieval_code(self.prepare(images)).float()

    def retrieval_code(self, x: Tensor) -> Tensor:
        """The code the index holds for prepared images: the encoder's, unless a variant pools views."""
        return self.encode(x)

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        """Reconstructions of uint8 images as [0, 1] pixels (B, 28, 28)."""
        self.eval()
        return self.to_unit(self(self.prepare(images)))

    @torch.no_grad()
    def sample(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """Images (count, 28, 28) in [0, 1] decoded from z ~ N(0, I): meaningful for VAEs."""
        self.eval()
        z = torch.randn(count, self.config.code_dim, generator=generator)
        return self.to_unit(self.decode(z))

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
