"""The gallery's items and their images."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from app.api.deps import RuntimeDep, SearchServiceDep, SettingsDep, within_max_k
from app.api.errors import ERROR_RESPONSES
from app.api.params import ItemId, LabelFilter, OtherNeighbourCount
from app.api.schemas import GalleryItemList, GalleryItemPublic, ModelRef, SearchResponse, results_of
from app.api.security import WRITE_ROUTE
from app.api.uploads import read_upload
from app.rendering.png import png_bytes
from models.errors import InvalidRequestError, NotFoundError

router = APIRouter(prefix="/gallery", tags=["gallery"])

# Metadata rides along with every item (rewritten with the gallery on each change): keep it small and flat.
MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 8


def _unknown(item_id: int, size: int) -> NotFoundError:
    return NotFoundError(f"no gallery item with id {item_id}; ids run from 0 to {size - 1}")


@router.get("/{item_id}", response_model=GalleryItemPublic, responses=ERROR_RESPONSES, summary="Get a gallery item")
def get_gallery_item(item_id: ItemId, service: SearchServiceDep) -> GalleryItemPublic:
    """Metadata of one gallery image: its MNIST split, position in the split and label."""
    gallery = service.snapshot.gallery
    item = gallery.item(item_id)
    if item is None:
        raise _unknown(item_id, len(gallery))
    return GalleryItemPublic.of(item)


@router.get(
    "/{item_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The image as PNG."}, **ERROR_RESPONSES},
    summary="Get a gallery image as PNG",
)
def get_gallery_image(
    request: Request,
    item_id: ItemId,
    service: SearchServiceDep,
    scale: Annotated[int, Query(ge=1, le=16, description="Enlarge the 28x28 image this many times.")] = 1,
) -> Response:
    """The 28x28 gallery image as a grayscale PNG (white ink on black, as in MNIST)."""
    gallery = service.snapshot.gallery
    image = gallery.image(item_id)
    if image is None:
        raise _unknown(item_id, len(gallery))
    # Revalidated on every use: a cached copy must not outlive a delete (ids are never reused, but
    # an hour of max-age showed a deleted image). The ETag makes the revalidation a 304.
    etag = f'"{hashlib.sha256(image.tobytes()).hexdigest()[:32]}-{scale}"'
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(png_bytes(image, scale), media_type="image/png", headers=headers)


@router.get(
    "/{item_id}/neighbours",
    response_model=SearchResponse,
    responses=ERROR_RESPONSES,
    summary="Find the neighbours of a gallery item",
)
def get_gallery_neighbours(
    item_id: ItemId,
    service: SearchServiceDep,
    settings: SettingsDep,
    k: OtherNeighbourCount = 10,
    label: LabelFilter = None,
) -> SearchResponse:
    """The k nearest other gallery items of a gallery item, from its stored code (no image is
    decoded or encoded)."""
    started = time.perf_counter()
    within_max_k(k, settings)
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
        model=ModelRef.of(snapshot.record),
        query_ms=round(elapsed, 3),
        timings_ms={"search": round(elapsed, 3)},
        results=results_of(ranked),
    )


def _parse_labels(text: str, count: int) -> list[int]:
    try:
        labels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidRequestError(f"labels must be comma-separated integers, got {text!r}") from None
    if len(labels) == 1 and count > 1:
        labels = labels * count
    if len(labels) != count or any(label < 0 for label in labels):
        raise InvalidRequestError(f"labels: give one non-negative label per file ({count}), or one for all")
    return labels


def _parse_metadata(text: str | None, count: int) -> list[dict[str, Any] | None]:
    if not text:
        return [None] * count
    if len(text.encode()) > MAX_METADATA_BYTES * count:
        raise InvalidRequestError(f"metadata is over {MAX_METADATA_BYTES} bytes per file")
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise InvalidRequestError(f"metadata is not valid JSON ({type(error).__name__})") from None
    entries = value if isinstance(value, list) else [value] * count
    if len(entries) != count or not all(isinstance(entry, dict) for entry in entries):
        raise InvalidRequestError("metadata: one JSON object for all files, or a list of one per file")
    for entry in entries:
        if len(json.dumps(entry).encode()) > MAX_METADATA_BYTES:
            raise InvalidRequestError(f"metadata is over {MAX_METADATA_BYTES} bytes for a file (as compact JSON)")
        if nesting_depth(entry) > MAX_METADATA_DEPTH:
            raise InvalidRequestError(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
    return entries


def nesting_depth(value: object) -> int:
    """How deeply JSON containers nest in `value` (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in (current.values() if isinstance(current, dict) else current))
    return deepest


@router.post(
    "",
    **WRITE_ROUTE,
    status_code=201,
    response_model=GalleryItemList,
    responses=ERROR_RESPONSES,
    summary="Add images to the gallery",
)
def add_gallery_images(
    runtime: RuntimeDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="Images to add, each in a field named `files`.")],
    labels: Annotated[
        str, Form(description="Comma-separated labels, one per file (or one for all).", examples=["7", "1,4,9"])
    ],
    metadata: Annotated[
        str | None,
        Form(
            description="JSON: one object for all files, or a list of one per file (at most 4 KB and 8 levels each).",
            examples=['{"source": "scan 2026-11-29"}', '[{"writer": "a"}, {"writer": "b"}]'],
        ),
    ] = None,
) -> GalleryItemList:
    """Preprocess the images like queries, encode them with the active model and add them to the
    index without rebuilding it, under new ids that are never reused. Saved at once; searches see
    the new images as soon as this returns. If any file is not a usable image, nothing is added."""
    if len(files) > settings.max_batch_files:
        raise InvalidRequestError(f"at most {settings.max_batch_files} files per request")
    parsed_labels = _parse_labels(labels, len(files))
    parsed_metadata = _parse_metadata(metadata, len(files))
    uploads = [read_upload(file, settings.max_upload_bytes) for file in files]
    items = runtime.add_to_gallery(uploads, parsed_labels, parsed_metadata)
    return GalleryItemList(data=[GalleryItemPublic.of(item) for item in items], count=len(items))


@router.delete(
    "/{item_id}",
    **WRITE_ROUTE,
    status_code=204,
    responses=ERROR_RESPONSES,
    summary="Remove an image from the gallery",
)
def remove_gallery_image(item_id: ItemId, runtime: RuntimeDep) -> Response:
    """Remove one item from the index and the gallery, without rebuilding; its id is not reused."""
    runtime.remove_from_gallery(item_id)
    return Response(status_code=204)
