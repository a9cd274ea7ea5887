"""Pictures of what a trained model does: reconstructions, loss curves, samples, interpolations, denoising."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import Response
from PIL import Image

from app.api.deps import RuntimeDep, SearchServiceDep, SettingsDep
from app.errors import ERROR_RESPONSES, ApiError
from app.pictures import curves_png, grid_png, to_uint8
from app.uploads import read_upload
from models.base import Autoencoder
from models.corruption import corrupt
from models.dense import DenseConfig
from models.preprocessing import decode_image, to_grayscale, to_mnist
from models.registry import GENERATIVE_VARIANTS

router = APIRouter(prefix="/models", tags=["pictures"])

Version = Annotated[str, Path(description="Model version id (12 hex digits).", max_length=64)]
PNG_RESPONSES = {200: {"content": {"image/png": {}}, "description": "A PNG picture."}, **ERROR_RESPONSES}


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png")


@router.post("/{version}/reconstruct", response_class=Response, responses=PNG_RESPONSES, summary="Reconstruct an image")
def reconstruct_image(
    version: Version, runtime: RuntimeDep, settings: SettingsDep, file: Annotated[UploadFile, File()]
) -> Response:
    """A PNG of three panels: the upload shrunk to 28x28, the preprocessed 28x28 image the model
    sees, and the model's reconstruction of it."""
    model, _ = runtime.model(version)
    image = decode_image(read_upload(file, settings), runtime.limits)
    gray = to_grayscale(image)
    thumbnail = np.asarray(Image.fromarray(gray.astype(np.uint8)).resize((28, 28), Image.Resampling.BOX))
    query = to_mnist(gray)
    reconstruction = to_uint8(model.reconstruct(torch.from_numpy(query[None]))[0].numpy())
    return _png(grid_png([[thumbnail, query, reconstruction]], scale=6))


@router.get("/{version}/loss.png", response_class=Response, responses=PNG_RESPONSES, summary="Plot the loss curve")
def get_loss_curve(version: Version, runtime: RuntimeDep) -> Response:
    """Mean training loss per epoch, one line for end-to-end training and one per pretraining phase."""
    _, record = runtime.model(version)
    history = record.history
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for phase, losses in history.get("pretraining", {}).items():
        if len(losses) > 1 or "reconstruction" not in phase:
            curves[phase] = (list(range(1, len(losses) + 1)), list(losses))
    losses = history.get("epoch_losses", [])
    if losses:
        curves["end to end"] = (list(range(1, len(losses) + 1)), list(losses))
    if not curves:
        raise ApiError("not_found", f"model {version} has no recorded training history")
    return _png(curves_png(curves, f"{record.variant} {version}", "epoch"))


def _generative(runtime: RuntimeDep, version: str) -> Autoencoder:
    model, record = runtime.model(version)
    if record.variant not in GENERATIVE_VARIANTS:
        raise ApiError(
            "conflict",
            f"model {version} is a {record.variant}; samples need a {' or '.join(sorted(GENERATIVE_VARIANTS))}",
        )
    return model


@router.get("/{version}/samples.png", response_class=Response, responses=PNG_RESPONSES, summary="Generate new digits")
def get_samples(
    version: Version,
    runtime: RuntimeDep,
    n: Annotated[int, Query(ge=1, le=100, description="How many samples.")] = 16,
    seed: Annotated[int, Query(ge=0, description="Seed of z ~ N(0, I).")] = 0,
) -> Response:
    """New digits decoded from codes drawn from the prior N(0, I): VAEs only."""
    model = _generative(runtime, version)
    images = model.sample(n, torch.Generator().manual_seed(seed)).numpy()
    per_row = int(np.ceil(np.sqrt(n)))
    tiles = [to_uint8(image) for image in images]
    return _png(grid_png([tiles[i : i + per_row] for i in range(0, n, per_row)]))


@router.get(
    "/{version}/interpolate.png", response_class=Response, responses=PNG_RESPONSES, summary="Interpolate two digits"
)
def get_interpolation(
    version: Version,
    runtime: RuntimeDep,
    service: SearchServiceDep,
    a: Annotated[int, Query(ge=0, description="Gallery id of the first image.")],
    b: Annotated[int, Query(ge=0, description="Gallery id of the second image.")],
    steps: Annotated[int, Query(ge=2, le=32, description="Images along the way, ends included.")] = 8,
) -> Response:
    """Decode evenly spaced points on the line between the codes of two gallery images: VAEs only."""
    model = _generative(runtime, version)
    gallery = service.snapshot.gallery
    first, second = gallery.image(a), gallery.image(b)
    if first is None or second is None:
        raise ApiError("not_found", f"gallery ids {a} and {b} must both exist (0 to {len(gallery) - 1})")
    codes = model.embed(torch.from_numpy(np.stack([first, second])))
    weights = torch.linspace(0, 1, steps)[:, None]
    path = (1 - weights) * codes[0] + weights * codes[1]
    with torch.no_grad():
        images = model.to_unit(model.decode(path)).numpy()
    return _png(grid_png([[to_uint8(image) for image in images]]))


@router.post("/{version}/denoise", response_class=Response, responses=PNG_RESPONSES, summary="Denoise an image")
def denoise_image(
    version: Version,
    runtime: RuntimeDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    noise: Annotated[float, Query(ge=0, le=1, description="Level of the model's own noise to add first.")] = 0.3,
    seed: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Three panels: the preprocessed image, a corrupted copy (the model's corruption kind at
    `noise`), and the model's output from the corrupted copy. Denoising autoencoders only."""
    model, record = runtime.model(version)
    config = model.config
    if not isinstance(config, DenseConfig) or config.corruption == "none":
        raise ApiError(
            "conflict", f"model {version} is a {record.variant} trained without input noise; use a denoising model"
        )
    clean = to_mnist(to_grayscale(decode_image(read_upload(file, settings), runtime.limits)))
    x = torch.from_numpy(clean[None]).float().div(255.0)
    noisy = corrupt(x, config.corruption, noise, torch.Generator().manual_seed(seed))
    noisy_uint8 = torch.from_numpy(to_uint8(noisy.numpy()))
    output = model.reconstruct(noisy_uint8).numpy()[0]
    return _png(grid_png([[clean, noisy_uint8[0].numpy(), to_uint8(output)]], scale=6))
