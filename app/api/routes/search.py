"""Search the gallery with an uploaded image."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile

from app.api.deps import SearchServiceDep, SettingsDep
from app.api.routes.gallery import image_url
from app.errors import ERROR_RESPONSES, ApiError
from app.images import png_base64
from app.schemas import ModelRef, SearchResponse, SearchResult
from models.errors import ImageTooLargeError

router = APIRouter(prefix="/search", tags=["search"])

UPLOAD_DESCRIPTION = (
    "A picture of one digit: PNG, JPEG, GIF, BMP, WebP or TIFF, any size, grayscale, RGB, RGBA or "
    "palette. Dark ink on light paper and light ink on dark are both fine."
)


@router.post(
    "",
    response_model=SearchResponse,
    responses=ERROR_RESPONSES,
    summary="Find the gallery images nearest to an uploaded image",
)
def search_by_image(
    request: Request,
    http_response: Response,
    service: SearchServiceDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description=UPLOAD_DESCRIPTION)],
    k: Annotated[int, Query(ge=1, le=100, description="How many neighbours to return.")] = 10,
    debug: Annotated[
        bool, Query(description="Also return the 28x28 image the model saw and its reconstruction.")
    ] = False,
) -> SearchResponse:
    """Preprocess the image the way MNIST was made (upright, grayscale, light ink on black,
    cropped to the ink, longer side 20 px, centre of mass at the centre of 28x28), encode it
    with the active model and return its k nearest gallery images by Euclidean distance
    between codes."""
    started = time.perf_counter()
    if k > settings.max_k:
        raise ApiError("validation_error", f"k={k} is over the limit of {settings.max_k} (AESEEK_MAX_K)")
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ImageTooLargeError(
            f"the upload is over the limit of {settings.max_upload_bytes} bytes (AESEEK_MAX_UPLOAD_BYTES)"
        )
    outcome = service.search_upload(data, k)
    request.app.state.metrics.observe_stages(outcome.timings_ms)
    http_response.headers["Server-Timing"] = ", ".join(
        f"{stage};dur={ms:.3f}" for stage, ms in outcome.timings_ms.items()
    )
    record = outcome.snapshot.record
    response = SearchResponse(
        model=ModelRef(version=record.version, variant=record.variant),
        query_ms=0.0,
        timings_ms={stage: round(ms, 3) for stage, ms in outcome.timings_ms.items()},
        results=[
            SearchResult(
                rank=n.rank,
                id=n.item.id,
                distance=n.distance,
                score=n.score,
                label=n.item.label,
                image_url=image_url(n.item.id),
            )
            for n in outcome.neighbours
        ],
    )
    if debug:
        response.query_png = png_base64(outcome.query_image)
        response.reconstruction_png = png_base64(service.reconstruct(outcome.query_image, outcome.snapshot))
        response.query_code = [round(value, 6) for value in outcome.code.tolist()]
    response.query_ms = round((time.perf_counter() - started) * 1000.0, 3)
    return response
