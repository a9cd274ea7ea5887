"""The FastAPI application: `create_app(settings)` builds it, its lifespan loads model and gallery once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.router import api_router
from app.errors import install_error_handlers
from app.middleware import BodySizeLimit, RequestTimeout
from app.observability import Metrics, RequestContext
from app.openapi import install_openapi
from app.runtime import Runtime, configure_threads
from app.settings import Settings, get_settings

logger = logging.getLogger("aeseek")

DESCRIPTION = """
Content-based image retrieval with autoencoders. A convolutional autoencoder maps each
gallery image (MNIST by default) to a 16-d code; a FAISS index finds the codes nearest to
a query's. Upload a picture of a digit to **POST /api/v1/search** and read its neighbours.
Every autoencoder of the chapter trains as a background job (**POST /api/v1/train**) and can
be activated for search once trained.
"""

SUPERVISE_INTERVAL_S = 1.0
WEB_DIR = Path(__file__).parent / "web" / "static"


async def _supervise_worker(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(SUPERVISE_INTERVAL_S)
        if runtime.jobs is not None:
            runtime.jobs.supervise()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model, gallery and training worker start in the lifespan, not here."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_threads(settings)
        runtime = app.state.runtime
        runtime.load_active()
        runtime.start_batching()
        # Torch, the gallery and the app are ~250k long-lived objects: a full collection over them
        # took ~110 ms and showed up as search p99. Freezing them leaves collections to new objects.
        gc.freeze()
        supervisor = None
        if runtime.jobs is not None:
            runtime.jobs.start()
            supervisor = asyncio.create_task(_supervise_worker(runtime))
        try:
            yield
        finally:
            if supervisor is not None:
                supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervisor
            if runtime.jobs is not None:
                runtime.jobs.stop()
            runtime.stop_batching()

    app = FastAPI(
        title="aeseek",
        summary="Image search with autoencoders and FAISS.",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = Runtime(settings)
    app.state.metrics = metrics = Metrics()
    if app.state.runtime.jobs is not None:
        metrics.watch_jobs(app.state.runtime.jobs.store)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestTimeout, seconds=settings.request_timeout_s)
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:  # CORS is off unless origins are named
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.include_router(api_router, prefix="/api/v1")
    app.add_middleware(RequestContext, metrics=metrics)  # outermost: ids and timing cover everything
    install_openapi(app, reads_need_key=settings.require_key_for_reads)

    @app.get("/metrics", tags=["observability"], summary="Prometheus metrics", response_class=PlainTextResponse)
    def get_metrics() -> PlainTextResponse:
        """Request counts and latency per route, search stage timings, gallery size, active model,
        job states and durations, in the Prometheus text format."""
        search = app.state.runtime.search
        if search is not None:
            snapshot = search.snapshot
            metrics.set_active(snapshot.record.version, snapshot.record.variant, len(snapshot.gallery))
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def web_page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    return app
