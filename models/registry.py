"""Every trainable variant by name: its config class and its model class."""

from __future__ import annotations

from typing import Any

import torch

from models.base import Autoencoder, AutoencoderConfig
from models.errors import ErrorCode, InvalidRequestError
from models.variants.conv import ConvAutoencoder, ConvConfig, ConvVAEConfig, ConvVariationalAutoencoder
from models.variants.deep import DeepAutoencoder, DeepConfig
from models.variants.dense import (
    ContractiveConfig,
    DenoisingConfig,
    DenseAutoencoder,
    L2Config,
    MultilayerConfig,
    SparseConfig,
    VanillaConfig,
)
from models.variants.lstm import LSTMAutoencoder, LSTMConfig
from models.variants.stacked import StackedAutoencoder, StackedConfig
from models.variants.vae import VAEConfig, VariationalAutoencoder

VARIANTS: dict[str, tuple[type[AutoencoderConfig], type[Autoencoder]]] = {
    "vanilla": (VanillaConfig, DenseAutoencoder),
    "multilayer": (MultilayerConfig, DenseAutoencoder),
    "stacked": (StackedConfig, StackedAutoencoder),
    "deep": (DeepConfig, DeepAutoencoder),
    "denoising": (DenoisingConfig, DenseAutoencoder),
    "conv": (ConvConfig, ConvAutoencoder),
    "conv_vae": (ConvVAEConfig, ConvVariationalAutoencoder),
    "l2": (L2Config, DenseAutoencoder),
    "sparse": (SparseConfig, DenseAutoencoder),
    "contractive": (ContractiveConfig, DenseAutoencoder),
    "vae": (VAEConfig, VariationalAutoencoder),
    "lstm": (LSTMConfig, LSTMAutoencoder),
}
DEFAULT_VARIANT = "conv"
# With Adam's two moments that is about 1.6 GB of training state: one job stays within one machine.
MAX_PARAMETERS = 100_000_000
GENERATIVE_VARIANTS = frozenset({"vae", "conv_vae"})


class UnknownVariantError(InvalidRequestError):
    """A variant name that is not in the registry."""

    code = ErrorCode.UNKNOWN_VARIANT


def _check(variant: object) -> str:
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise UnknownVariantError(f"unknown variant {variant!r}; known: {', '.join(sorted(VARIANTS))}")
    return variant


def config_from_dict(raw: dict[str, Any]) -> AutoencoderConfig:
    """Validate a JSON-ready dict (with a `variant` key) into that variant's config."""
    return VARIANTS[_check(raw.get("variant"))][0].model_validate(raw)


def saved_config_from_dict(raw: dict[str, Any]) -> AutoencoderConfig:
    """A saved model's config: fields it was saved without take the value they had then (SAVED_WITHOUT)."""
    kind = VARIANTS[_check(raw.get("variant"))][0]
    return kind.model_validate({**kind.SAVED_WITHOUT, **raw})


def default_config(variant: str = DEFAULT_VARIANT) -> AutoencoderConfig:
    """The default config of a variant."""
    return VARIANTS[_check(variant)][0].model_validate({"variant": variant})


def check_size(config: AutoencoderConfig) -> int:
    """The model's parameter count, built without memory (meta tensors); InvalidRequestError over MAX_PARAMETERS."""
    with torch.device("meta"):
        count = VARIANTS[_check(config.variant)][1](config).parameter_count()
    if count > MAX_PARAMETERS:
        raise InvalidRequestError(
            f"this {config.variant} config has {count:,} parameters; the limit is {MAX_PARAMETERS:,} "
            "(smaller hidden layers, channels or code)"
        )
    return count


def build_model(config: AutoencoderConfig) -> Autoencoder:
    """A freshly initialised model; the weights depend only on the config's seed."""
    _, model_class = VARIANTS[_check(config.variant)]
    torch.manual_seed(config.training.seed)
    return model_class(config)
