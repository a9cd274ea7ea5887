"""Trained models on disk: safetensors weights + JSON config, named by a content hash.

    <models_root>/<version>/model.safetensors   weights (no pickle)
    <models_root>/<version>/model.json          variant, config, version, parameters, created,
                                                training history and metrics

The version is the first 12 hex digits of SHA-256 over the config JSON and the weights,
so the same training gives the same version and any change gives a new one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from models.base import Autoencoder
from models.errors import CheckpointError
from models.registry import UnknownVariantError, build_model, saved_config_from_dict
from models.storage import atomic_write_bytes, atomic_write_json

WEIGHTS = "model.safetensors"
DESCRIPTION = "model.json"


@dataclass
class ModelRecord:
    """What `model.json` says of a trained model."""

    version: str
    variant: str
    config: dict[str, Any]
    parameters: int
    created: float
    history: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return dict(self.__dict__)


def _canonical_config(model: Autoencoder) -> str:
    return json.dumps(model.config.model_dump(mode="json"), sort_keys=True)


def save_model(model: Autoencoder, models_root: Path, history: dict[str, Any] | None = None) -> ModelRecord:
    """Save weights and description; return the record with the new version id."""
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    weights = save_safetensors(state)
    config_json = _canonical_config(model)
    version = hashlib.sha256(config_json.encode() + weights).hexdigest()[:12]
    directory = models_root / version
    record = ModelRecord(
        version=version,
        variant=model.config.variant,
        config=json.loads(config_json),
        parameters=model.parameter_count(),
        created=time.time(),
        history=history or {},
        weights_sha256=hashlib.sha256(weights).hexdigest(),
    )
    atomic_write_bytes(directory / WEIGHTS, weights)
    atomic_write_json(directory / DESCRIPTION, record.as_dict())
    return record


def read_record(directory: Path) -> ModelRecord:
    """The description of the model in `directory`."""
    path = directory / DESCRIPTION
    try:
        return ModelRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise CheckpointError(f"no model in {directory} ({DESCRIPTION} missing)") from None
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} is not a valid model description ({error})") from error


def update_metrics(directory: Path, metrics: dict[str, Any]) -> ModelRecord:
    """Merge evaluation metrics into a model's description."""
    record = read_record(directory)
    record.metrics.update(metrics)
    atomic_write_json(directory / DESCRIPTION, record.as_dict())
    return record


def load_model(directory: Path) -> tuple[Autoencoder, ModelRecord]:
    """Rebuild a saved model in eval mode; weights are read with safetensors, never unpickled."""
    record = read_record(directory)
    try:
        model = build_model(saved_config_from_dict(record.config))
    except (UnknownVariantError, ValidationError) as error:  # the server's own file, not the client's request
        raise CheckpointError(f"{directory / DESCRIPTION} holds an invalid config: {error}") from error
    try:
        raw = (directory / WEIGHTS).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{directory / WEIGHTS} is missing") from None
    if record.weights_sha256 and hashlib.sha256(raw).hexdigest() != record.weights_sha256:
        raise CheckpointError(f"{directory / WEIGHTS} does not match its checksum: the file is corrupt or partial")
    try:
        state = load_safetensors(raw)
    except (SafetensorError, ValueError, OSError) as error:
        raise CheckpointError(f"{directory / WEIGHTS} is not a valid safetensors file ({error})") from error
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{directory / WEIGHTS} does not fit a {record.variant} model: {error}") from error
    model.eval()
    return model, record


def list_models(models_root: Path) -> list[ModelRecord]:
    """Every readable model under `models_root`, newest first."""
    if not models_root.is_dir():
        return []
    records = []
    for directory in models_root.iterdir():
        if (directory / DESCRIPTION).is_file():
            try:
                records.append(read_record(directory))
            except CheckpointError:
                continue
    return sorted(records, key=lambda record: record.created, reverse=True)
