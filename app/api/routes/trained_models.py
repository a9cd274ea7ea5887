"""The trained models: which one answers searches."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SearchServiceDep
from app.errors import ERROR_RESPONSES
from app.schemas import ModelPublic

router = APIRouter(prefix="/models", tags=["models"])


@router.get(
    "/active", response_model=ModelPublic, responses={503: ERROR_RESPONSES[503]}, summary="Get the active model"
)
def get_active_model(service: SearchServiceDep) -> ModelPublic:
    """Variant, version, config, training history and retrieval metrics of the model answering searches."""
    snapshot = service.snapshot
    return ModelPublic(
        **snapshot.record.as_dict(),
        gallery=snapshot.gallery.manifest.gallery,
        gallery_size=len(snapshot.gallery),
    )
