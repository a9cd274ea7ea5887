"""The gallery's items and their images."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from app.api.deps import SearchServiceDep
from app.errors import ERROR_RESPONSES, ApiError
from app.images import png_bytes
from app.schemas import GalleryItemPublic, ModelRef, SearchResponse, SearchResult
from index.gallery import Neighbour

router = APIRouter(prefix="/gallery", tags=["gallery"])

LabelFilter = Annotated[
    int | None, Query(ge=0, description="Only gallery items with this label (filtered inside the index search).")
]
ItemId = Annotated[int, Path(ge=0, le=2**63 - 1, description="Gallery id, as returned by a search.")]


def image_url(item_id: int) -> str:
    """Where a gallery image is served."""
    return f"/api/v1/gallery/{item_id}/image"


def results_of(neighbours: list[Neighbour]) -> list[SearchResult]:
    """Neighbours as API results."""
    return [
        SearchResult(
            rank=n.rank, id=n.item.id, distance=n.distance, score=n.score, label=n.item.label,
            image_url=image_url(n.item.id),
        )
        for n in neighbours
    ]  # fmt: skip


def _unknown(item_id: int, size: int) -> ApiError:
    return ApiError("not_found", f"no gallery item with id {item_id}; ids run from 0 to {size - 1}")


@router.get("/{item_id}", response_model=GalleryItemPublic, responses=ERROR_RESPONSES, summary="Get a gallery item")
def get_gallery_item(item_id: ItemId, service: SearchServiceDep) -> GalleryItemPublic:
    """Metadata of one gallery image: its MNIST split, position in the split and label."""
    gallery = service.snapshot.gallery
    item = gallery.item(item_id)
    if item is None:
        raise _unknown(item_id, len(gallery))
    return GalleryItemPublic(
        id=item.id, split=item.split, index=item.index, label=item.label, image_url=image_url(item.id)
    )


@router.get(
    "/{item_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The image as PNG."}, **ERROR_RESPONSES},
    summary="Get a gallery image as PNG",
)
def get_gallery_image(
    item_id: ItemId,
    service: SearchServiceDep,
    scale: Annotated[int, Query(ge=1, le=16, description="Enlarge the 28x28 image this many times.")] = 1,
) -> Response:
    """The 28x28 gallery image as a grayscale PNG (white ink on black, as in MNIST)."""
    gallery = service.snapshot.gallery
    image = gallery.image(item_id)
    if image is None:
        raise _unknown(item_id, len(gallery))
    return Response(png_bytes(image, scale), media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})


@router.get(
    "/{item_id}/neighbours",
    response_model=SearchResponse,
    responses=ERROR_RESPONSES,
    summary="Find the neighbours of a gallery item",
)
def get_gallery_neighbours(
    item_id: ItemId,
    service: SearchServiceDep,
    k: Annotated[int, Query(ge=1, le=100, description="How many neighbours.")] = 10,
    label: LabelFilter = None,
) -> SearchResponse:
    """The k nearest other gallery items of a gallery item, from its stored code (no image is
    decoded or encoded)."""
    started = time.perf_counter()
    snapshot = service.snapshot
    gallery = snapshot.gallery
    code = gallery.code(item_id)
    if code is None:
        raise _unknown(item_id, len(gallery))
    [found] = gallery.search(code[None], k + 1, label)
    others = [n for n in found if n.item.id != item_id][:k]
    ranked = [replace(n, rank=rank) for rank, n in enumerate(others, start=1)]
    elapsed = (time.perf_counter() - started) * 1000.0
    return SearchResponse(
        model=ModelRef(version=snapshot.record.version, variant=snapshot.record.variant),
        query_ms=round(elapsed, 3),
        timings_ms={"search": round(elapsed, 3)},
        results=results_of(ranked),
    )
