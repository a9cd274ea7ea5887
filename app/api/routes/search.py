"""Search the gallery with an uploaded image, or with several."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Query, Request, Response, UploadFile

from app.api.deps import MetricsDep, RuntimeDep, SearchServiceDep, SettingsDep, within_max_k
from app.api.errors import ERROR_RESPONSES, status_of
from app.api.params import LabelFilter, NeighbourCount, NeighboursPerImage
from app.api.schemas import (
    BatchItem,
    BatchSearchResponse,
    ErrorBody,
    FeedbackRequest,
    ModelRef,
    SearchResponse,
    SimilarRequest,
    results_of,
)
from app.api.uploads import file_field_schema, read_file_field, read_upload
from app.rendering.png import png_base64
from app.services.feedback import Refined, refine
from app.services.observability import Metrics
from app.services.runtime import Runtime
from app.services.search import Snapshot
from app.settings import Settings
from models.errors import AeseekError, InvalidRequestError

router = APIRouter(prefix="/search", tags=["search"])

UPLOAD_DESCRIPTION = (
    "A picture of one digit: PNG, JPEG, GIF, BMP, WebP or TIFF, any size, grayscale, RGB, RGBA or "
    "palette. Dark ink on light paper and light ink on dark are both fine. For a first try, save an "
    "MNIST digit from GET /api/v1/gallery/0/image and upload it here."
)


@router.post(
    "",
    response_model=SearchResponse,
    responses=ERROR_RESPONSES,
    summary="Find the gallery images nearest to an uploaded image",
    openapi_extra=file_field_schema("file", UPLOAD_DESCRIPTION),
)
async def search_by_image(
    request: Request,
    k: NeighbourCount = 10,
    debug: Annotated[
        bool, Query(description="Also return the 28x28 image the model saw and its reconstruction.")
    ] = False,
    label: LabelFilter = None,
) -> Response:
    """Preprocess the image the way MNIST was made (upright, grayscale, light ink on black,
    cropped to the ink, longer side 20 px, centre of mass at the centre of 28x28), encode it
    with the active model and return its k nearest gallery images by Euclidean distance
    between codes."""
    # The hot path: the form is parsed without UploadFile spooling, concurrent queries share
    # one forward pass and one index call, and the response is serialised once by pydantic.
    # The app's state is read here rather than through three `Depends`, which cost 0.05 ms of
    # CPU per search to solve (1.22 -> 1.17 ms, docs/performance.md).
    started = time.perf_counter()
    state = request.app.state
    runtime: Runtime = state.runtime
    settings: Settings = state.settings
    metrics: Metrics = state.metrics
    within_max_k(k, settings)
    data = await read_file_field(request, "file", settings.max_upload_bytes)
    outcome = await runtime.search_upload(data, k, label)
    response = SearchResponse(
        model=ModelRef.of(outcome.snapshot.record),
        query_ms=0.0,
        timings_ms=_rounded(outcome.timings_ms),
        results=results_of(outcome.neighbours),
    )
    if debug:
        service = runtime.require_search()
        reconstruction = await asyncio.to_thread(service.reconstruct, outcome.query_image, outcome.snapshot)
        response.query_png = png_base64(outcome.query_image)
        response.reconstruction_png = png_base64(reconstruction)
        response.query_code = [round(value, 6) for value in outcome.code.tolist()]
    serialising = time.perf_counter()
    response.query_ms = round((serialising - started) * 1000.0, 3)
    body = response.model_dump_json()
    # Serialisation is timed for /metrics and Server-Timing only (the body cannot hold its own).
    outcome.timings_ms["serialise"] = (time.perf_counter() - serialising) * 1000.0
    metrics.observe_search(outcome)
    timing = ", ".join(f"{stage};dur={ms:.3f}" for stage, ms in outcome.timings_ms.items())
    return Response(body, media_type="application/json", headers={"Server-Timing": timing})


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {stage: round(ms, 3) for stage, ms in timings.items()}


@router.post(
    "/batch",
    response_model=BatchSearchResponse,
    responses=ERROR_RESPONSES,
    summary="Search with several images at once",
)
def search_batch(
    runtime: RuntimeDep,
    service: SearchServiceDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    files: Annotated[list[UploadFile], File(description="Several images, each in a field named `files`.")],
    k: NeighboursPerImage = 10,
    label: LabelFilter = None,
) -> BatchSearchResponse:
    """Each file is decoded and preprocessed alone, so a bad one gets its own error (status and
    code as a single search would) without failing the others; the good ones are encoded in one
    forward pass and searched in one index call, all with the same model."""
    started = time.perf_counter()
    within_max_k(k, settings)
    if len(files) > settings.max_batch_files:
        raise InvalidRequestError(
            f"{len(files)} files is over the limit of {settings.max_batch_files} per batch (AESEEK_MAX_BATCH_FILES)"
        )
    snapshot = service.snapshot
    uploads: list[bytes | AeseekError] = []
    for file in files:
        try:
            uploads.append(read_upload(file, settings.max_upload_bytes))
        except AeseekError as error:
            uploads.append(error)
    with runtime.admitted("decode"):
        answers = iter(service.search_uploads([data for data in uploads if isinstance(data, bytes)], k, label))
    items = []
    for index, (file, upload) in enumerate(zip(files, uploads, strict=True)):
        answer = upload if isinstance(upload, AeseekError) else next(answers)
        if isinstance(answer, AeseekError):
            body = ErrorBody(code=answer.code, message=str(answer))
            items.append(BatchItem(index=index, filename=file.filename, status=status_of(answer), error=body))
        else:
            snapshot = answer.snapshot
            metrics.observe_search(answer)
            items.append(
                BatchItem(
                    index=index, filename=file.filename, status=200, results=results_of(answer.neighbours),
                    timings_ms=_rounded(answer.timings_ms),
                )
            )  # fmt: skip
    return BatchSearchResponse(
        model=ModelRef.of(snapshot.record),
        query_ms=round((time.perf_counter() - started) * 1000.0, 3),
        count=len(items),
        items=items,
    )


def _refined_response(snapshot: Snapshot, refined: Refined, started: float) -> SearchResponse:
    elapsed = round((time.perf_counter() - started) * 1000.0, 3)
    return SearchResponse(
        model=ModelRef.of(snapshot.record),
        query_ms=elapsed,
        timings_ms={"search": elapsed},
        results=results_of(refined.neighbours),
        query_code=[round(value, 6) for value in refined.code.tolist()],
    )


@router.post("/feedback", response_model=SearchResponse, responses=ERROR_RESPONSES, summary="Refine a search")
def search_feedback(body: FeedbackRequest, service: SearchServiceDep, settings: SettingsDep) -> SearchResponse:
    """Relevance feedback (Rocchio in code space): the query moves towards the results marked relevant
    and away from those marked not relevant, and the gallery is searched again. The answer's
    `query_code` is the moved query: send it back with new marks for another round."""
    started = time.perf_counter()
    within_max_k(body.k, settings)
    snapshot = service.snapshot
    code = None if body.code is None else np.asarray(body.code, dtype=np.float32)
    refined = refine(
        snapshot.gallery, body.k, code=code, query_ids=body.ids, relevant=body.relevant,
        not_relevant=body.not_relevant, label=body.label,
    )  # fmt: skip
    return _refined_response(snapshot, refined, started)


@router.post("/similar", response_model=SearchResponse, responses=ERROR_RESPONSES, summary="More like these")
def search_similar(body: SimilarRequest, service: SearchServiceDep, settings: SettingsDep) -> SearchResponse:
    """The gallery items nearest to the mean code of several gallery items (those left out)."""
    started = time.perf_counter()
    within_max_k(body.k, settings)
    snapshot = service.snapshot
    return _refined_response(snapshot, refine(snapshot.gallery, body.k, query_ids=body.ids), started)
