"""The trainable variants (`/variants`) and their default configs."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.schemas import VariantInfo, VariantList
from models.registry import VARIANTS, default_config

router = APIRouter(tags=["training"])


@router.get("/variants", response_model=VariantList, summary="List trainable variants")
def list_variants() -> VariantList:
    """Every autoencoder variant with a one-line summary and its default config (a valid body for POST /train)."""
    entries = []
    for variant, (config_class, _) in VARIANTS.items():
        summary = (config_class.__doc__ or variant).strip().splitlines()[0]
        entries.append(
            VariantInfo(variant=variant, summary=summary, defaults=default_config(variant).model_dump(mode="json"))
        )
    return VariantList(data=entries, count=len(entries))
