"""Every trainable variant by name: its config class and its model class."""

from __future__ import annotations

from typing import Any

import torch

from models.base import Autoencoder, AutoencoderConfig
from models.conv import ConvAutoencoder, ConvConfig, ConvVAEConfig, ConvVariationalAutoencoder
from models.errors import CheckpointError

VARIANTS: dict[str, tuple[type[AutoencoderConfig], type[Autoencoder]]] = {
    "conv": (ConvConfig, ConvAutoencoder),
    "conv_vae": (ConvVAEConfig, ConvVariationalAutoencoder),
}
DEFAULT_VARIANT = "conv"


def config_from_dict(raw: dict[str, Any]) -> AutoencoderConfig:
    """Validate a JSON-ready dict (with a `variant` key) into that variant's config."""
    variant = raw.get("variant")
    if variant not in VARIANTS:
        raise CheckpointError(f"unknown variant {variant!r}; known: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[variant][0].model_validate(raw)


def default_config(variant: str = DEFAULT_VARIANT) -> AutoencoderConfig:
    """The default config of a variant."""
    if variant not in VARIANTS:
        raise CheckpointError(f"unknown variant {variant!r}; known: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[variant][0].model_validate({"variant": variant})


def build_model(config: AutoencoderConfig) -> Autoencoder:
    """A freshly initialised model; the weights depend only on the config's seed."""
    _, model_class = VARIANTS[config.variant]
    torch.manual_seed(config.training.seed)
    return model_class(config)
