"""The trained models: list them, see which one answers searches, activate another."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from app.api.deps import RuntimeDep, SearchServiceDep
from app.errors import ERROR_RESPONSES
from app.pictures import scatter_png
from app.runtime import Runtime
from app.schemas import LatentMap, ModelList, ModelPublic, ModelRef
from app.security import WRITE_OPERATION, require_write_access
from models.checkpoints import ModelRecord, list_models

router = APIRouter(prefix="/models", tags=["models"])

Version = Annotated[str, Path(description="Model version id (12 hex digits).", max_length=64)]


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


@router.get("", response_model=ModelList, summary="List trained models")
def list_trained_models(runtime: RuntimeDep) -> ModelList:
    """Every trained model (variant, version, config, metrics, created), newest first."""
    records = list_models(runtime.workspace.models_dir)
    return ModelList(data=[_public(record, runtime) for record in records], count=len(records))


@router.get(
    "/active", response_model=ModelPublic, responses={503: ERROR_RESPONSES[503]}, summary="Get the active model"
)
def get_active_model(service: SearchServiceDep, runtime: RuntimeDep) -> ModelPublic:
    """Variant, version, config, training history and retrieval metrics of the model answering searches."""
    return _public(service.snapshot.record, runtime)


@router.get("/{version}", response_model=ModelPublic, responses=ERROR_RESPONSES, summary="Get a trained model")
def get_trained_model(version: Version, runtime: RuntimeDep) -> ModelPublic:
    """One trained model's description."""
    _, record = runtime.model(version)
    return _public(record, runtime)


@router.post(
    "/{version}/activate",
    dependencies=[Depends(require_write_access)],
    openapi_extra=WRITE_OPERATION,
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


@router.get(
    "/active/latent-map",
    response_model=LatentMap,
    responses={503: ERROR_RESPONSES[503]},
    summary="Get the active gallery's latent map",
)
def get_latent_map(service: SearchServiceDep, runtime: RuntimeDep) -> LatentMap:
    """A 2-D PCA of the active gallery's codes (3,000 sampled points with labels) and the
    projection, so a query's code (search with debug=true) can be placed on the same map."""
    snapshot = service.snapshot
    projection = runtime.latent_projection(snapshot)
    gallery = snapshot.gallery
    points = [
        (round(float(x), 4), round(float(y), 4), gallery.items[int(row)].label)
        for row, (x, y) in zip(projection.rows, projection.points, strict=True)
    ]
    xs, ys = projection.points[:, 0], projection.points[:, 1]
    return LatentMap(
        model=ModelRef(version=snapshot.record.version, variant=snapshot.record.variant),
        points=points,
        mean=projection.mean.tolist(),
        components=projection.components.tolist(),
        bounds=(float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())),
        explained_variance=(float(projection.explained[0]), float(projection.explained[1])),
    )


@router.get(
    "/active/latent-map.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The latent map."}, 503: ERROR_RESPONSES[503]},
    summary="Plot the active gallery's latent map",
)
def get_latent_map_png(service: SearchServiceDep, runtime: RuntimeDep) -> Response:
    """The 2-D PCA of the active gallery's codes as a PNG scatter plot, coloured by digit."""
    snapshot = service.snapshot
    projection = runtime.latent_projection(snapshot)
    labels = np.array([snapshot.gallery.items[int(row)].label for row in projection.rows])
    title = f"{snapshot.record.variant} {snapshot.record.version}: PCA of {len(snapshot.gallery):,} codes"
    return Response(scatter_png(projection.points, labels, title), media_type="image/png")
