"""Trained models: list them, see which one answers searches, activate another, and the pictures of
what each does (reconstructions, loss curves, samples, interpolations, denoising, the latent map)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import numpy as np
import torch
from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import Response
from PIL import Image

from app.api.deps import RuntimeDep, SearchServiceDep, SettingsDep
from app.api.errors import ERROR_RESPONSES
from app.api.params import Version
from app.api.schemas import LatentMap, ModelList, ModelPublic, ModelRef
from app.api.security import WRITE_ROUTE
from app.api.uploads import read_upload
from app.rendering.plots import curves_png, scatter_png
from app.rendering.png import grid_png, to_uint8
from app.services.runtime import Runtime
from models.base import Autoencoder
from models.checkpoints import ModelRecord, list_models
from models.data.corruption import corrupt
from models.data.preprocessing import to_grayscale, to_mnist
from models.errors import ConflictError, NotFoundError
from models.registry import GENERATIVE_VARIANTS
from models.variants.dense import DenseConfig

router = APIRouter(prefix="/models")
# Two Swagger sections under one prefix: the models themselves, and pictures of what they do.
MODELS: list[str | Enum] = ["models"]
PICTURES: list[str | Enum] = ["pictures"]

# torch.Generator takes 64-bit seeds; larger ones were a 500.
MAX_SEED = 2**63 - 1
PNG_RESPONSES = {200: {"content": {"image/png": {}}, "description": "A PNG picture."}, **ERROR_RESPONSES}


def _public(record: ModelRecord, runtime: Runtime) -> ModelPublic:
    search = runtime.search
    active = search is not None and search.snapshot.record.version == record.version
    gallery = search.snapshot.gallery if search is not None and active else None
    return ModelPublic(
        **record.as_dict(),
        active=active,
        gallery=gallery.manifest.gallery if gallery else None,
        gallery_size=len(gallery) if gallery else None,
    )


@router.get("", tags=MODELS, response_model=ModelList, summary="List trained models")
def list_trained_models(runtime: RuntimeDep) -> ModelList:
    """Every trained model (variant, version, config, metrics, created), newest first."""
    records = list_models(runtime.workspace.models_dir)
    return ModelList(data=[_public(record, runtime) for record in records], count=len(records))


@router.get(
    "/active",
    tags=MODELS,
    response_model=ModelPublic,
    responses={503: ERROR_RESPONSES[503]},
    summary="Get the active model",
)
def get_active_model(service: SearchServiceDep, runtime: RuntimeDep) -> ModelPublic:
    """Variant, version, config, training history and retrieval metrics of the model answering searches."""
    return _public(service.snapshot.record, runtime)


@router.get(
    "/{version}", tags=MODELS, response_model=ModelPublic, responses=ERROR_RESPONSES, summary="Get a trained model"
)
def get_trained_model(version: Version, runtime: RuntimeDep) -> ModelPublic:
    """One trained model's description."""
    record = runtime.record(version)
    return _public(record, runtime)


@router.post(
    "/{version}/activate",
    tags=MODELS,
    **WRITE_ROUTE,
    response_model=ModelPublic,
    responses=ERROR_RESPONSES,
    summary="Activate a model",
)
def activate_model(version: Version, runtime: RuntimeDep) -> ModelPublic:
    """Embed the gallery with this model (or reuse its gallery if already built) and swap it in
    atomically: searches in flight finish on the old model, later ones use the new one, and
    every search response names the version that answered it."""
    snapshot = runtime.activate(version)
    return _public(snapshot.record, runtime)


@router.delete(
    "/{version}",
    tags=MODELS,
    **WRITE_ROUTE,
    status_code=204,
    responses=ERROR_RESPONSES,
    summary="Delete a trained model",
)
def delete_model(version: Version, runtime: RuntimeDep) -> Response:
    """Delete a trained model, its galleries and the fallback activations that name it. The model
    answering searches cannot be deleted (409): activate another one first."""
    runtime.delete_model(version)
    return Response(status_code=204)


@router.get(
    "/active/latent-map",
    tags=MODELS,
    response_model=LatentMap,
    responses={503: ERROR_RESPONSES[503]},
    summary="Get the active gallery's latent map",
)
def get_latent_map(service: SearchServiceDep, runtime: RuntimeDep) -> LatentMap:
    """A 2-D PCA of the active gallery's codes (3,000 sampled points with labels) and the
    projection, so a query's code (search with debug=true) can be placed on the same map."""
    snapshot = service.snapshot
    projection = runtime.latent_projection(snapshot)
    points = [
        (round(float(x), 4), round(float(y), 4), int(label))
        for label, (x, y) in zip(projection.labels, projection.points, strict=True)
    ]
    xs, ys = projection.points[:, 0], projection.points[:, 1]
    return LatentMap(
        model=ModelRef.of(snapshot.record),
        points=points,
        mean=projection.mean.tolist(),
        components=projection.components.tolist(),
        bounds=(float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())),
        explained_variance=(float(projection.explained[0]), float(projection.explained[1])),
    )


@router.get(
    "/active/latent-map.png",
    tags=MODELS,
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The latent map."}, 503: ERROR_RESPONSES[503]},
    summary="Plot the active gallery's latent map",
)
def get_latent_map_png(service: SearchServiceDep, runtime: RuntimeDep) -> Response:
    """The 2-D PCA of the active gallery's codes as a PNG scatter plot, coloured by digit."""
    snapshot = service.snapshot
    projection = runtime.latent_projection(snapshot)
    title = f"{snapshot.record.variant} {snapshot.record.version}: PCA of {len(snapshot.gallery):,} codes"
    picture = runtime.gallery_picture(
        snapshot.gallery, "latent-map", lambda: scatter_png(projection.points, projection.labels, title)
    )
    return Response(picture, media_type="image/png")


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png")


@router.post(
    "/{version}/reconstruct",
    tags=PICTURES,
    response_class=Response,
    responses=PNG_RESPONSES,
    summary="Reconstruct an image",
)
def reconstruct_image(
    version: Version, runtime: RuntimeDep, settings: SettingsDep, file: Annotated[UploadFile, File()]
) -> Response:
    """A PNG of three panels: the upload shrunk to 28x28, the preprocessed 28x28 image the model
    sees, and the model's reconstruction of it."""
    model, _ = runtime.model(version)
    image = runtime.decode_upload(read_upload(file, settings.max_upload_bytes))
    gray = to_grayscale(image)
    thumbnail = np.asarray(Image.fromarray(gray.astype(np.uint8)).resize((28, 28), Image.Resampling.BOX))
    query = to_mnist(gray)
    reconstruction = to_uint8(model.reconstruct(torch.from_numpy(query[None]))[0].numpy())
    return _png(grid_png([[thumbnail, query, reconstruction]], scale=6))


@router.get(
    "/{version}/loss.png",
    tags=PICTURES,
    response_class=Response,
    responses=PNG_RESPONSES,
    summary="Plot the loss curve",
)
def get_loss_curve(version: Version, runtime: RuntimeDep) -> Response:
    """Mean training loss per epoch, one line for end-to-end training and one per pretraining phase."""
    record = runtime.record(version)
    history = record.history
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for phase, losses in history.get("pretraining", {}).items():
        if len(losses) > 1 or "reconstruction" not in phase:
            curves[phase] = (list(range(1, len(losses) + 1)), list(losses))
    losses = history.get("epoch_losses", [])
    if losses:
        curves["end to end"] = (list(range(1, len(losses) + 1)), list(losses))
    if not curves:
        raise NotFoundError(f"model {version} has no recorded training history")
    title = f"{record.variant} {version}"
    return _png(runtime.model_picture(version, "loss", lambda: curves_png(curves, title, "epoch")))


def _generative(runtime: RuntimeDep, version: str) -> Autoencoder:
    model, record = runtime.model(version)
    if record.variant not in GENERATIVE_VARIANTS:
        raise ConflictError(
            f"model {version} is a {record.variant}; samples need a {' or '.join(sorted(GENERATIVE_VARIANTS))}",
        )
    return model


@router.get(
    "/{version}/samples.png",
    tags=PICTURES,
    response_class=Response,
    responses=PNG_RESPONSES,
    summary="Generate new digits",
)
def get_samples(
    version: Version,
    runtime: RuntimeDep,
    n: Annotated[int, Query(ge=1, le=100, description="How many samples.")] = 16,
    seed: Annotated[int, Query(ge=0, le=MAX_SEED, description="Seed of z ~ N(0, I).")] = 0,
) -> Response:
    """New digits decoded from codes drawn from the prior N(0, I): VAEs only."""
    model = _generative(runtime, version)
    images = model.sample(n, torch.Generator().manual_seed(seed)).numpy()
    per_row = int(np.ceil(np.sqrt(n)))
    tiles = [to_uint8(image) for image in images]
    return _png(grid_png([tiles[i : i + per_row] for i in range(0, n, per_row)]))


@router.get(
    "/{version}/interpolate.png",
    tags=PICTURES,
    response_class=Response,
    responses=PNG_RESPONSES,
    summary="Interpolate two digits",
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
        raise NotFoundError(f"gallery ids {a} and {b} must both exist (0 to {len(gallery) - 1})")
    codes = model.embed(torch.from_numpy(np.stack([first, second])))
    weights = torch.linspace(0, 1, steps)[:, None]
    path = (1 - weights) * codes[0] + weights * codes[1]
    with torch.no_grad():
        images = model.to_unit(model.decode(path)).numpy()
    return _png(grid_png([[to_uint8(image) for image in images]]))


@router.post(
    "/{version}/denoise", tags=PICTURES, response_class=Response, responses=PNG_RESPONSES, summary="Denoise an image"
)
def denoise_image(
    version: Version,
    runtime: RuntimeDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    noise: Annotated[float, Query(ge=0, le=1, description="Level of the model's own noise to add first.")] = 0.3,
    seed: Annotated[int, Query(ge=0, le=MAX_SEED, description="Seed of the noise.")] = 0,
) -> Response:
    """Three panels: the preprocessed image, a corrupted copy (the model's corruption kind at
    `noise`), and the model's output from the corrupted copy. Denoising autoencoders only."""
    model, record = runtime.model(version)
    config = model.config
    if not isinstance(config, DenseConfig) or config.corruption == "none":
        raise ConflictError(f"model {version} is a {record.variant} trained without input noise; use a denoising model")
    clean = to_mnist(to_grayscale(runtime.decode_upload(read_upload(file, settings.max_upload_bytes))))
    x = torch.from_numpy(clean[None]).float().div(255.0)
    noisy = corrupt(x, config.corruption, noise, torch.Generator().manual_seed(seed))
    noisy_uint8 = torch.from_numpy(to_uint8(noisy.numpy()))
    output = model.reconstruct(noisy_uint8).numpy()[0]
    return _png(grid_png([[clean, noisy_uint8[0].numpy(), to_uint8(output)]], scale=6))
