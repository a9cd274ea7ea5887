"""The FastAPI application: `create_app(settings)` builds it, its lifespan loads model and gallery once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.errors import install_error_handlers
from app.api.middleware import BodySizeLimit, Idempotency, ReadGate, RequestContext, RequestTimeout
from app.api.openapi import install_openapi, operation_id
from app.api.router import api_router, site_router
from app.api.routes.docs import mount_assets as mount_docs_assets
from app.api.routes.web import mount_static
from app.api.security import refuse_weak_keys
from app.services.idempotency import IdempotencyStore
from app.services.jobs.manager import JobManager
from app.services.observability import Metrics, configure_logging
from app.services.retention import collect
from app.services.runtime import Runtime, configure_threads
from app.settings import Settings, get_settings

DESCRIPTION = """
Content-based image retrieval with autoencoders. A convolutional autoencoder maps each
gallery image (MNIST by default) to a 16-d code; a FAISS index finds the codes nearest to
a query's. Upload a picture of a digit to **POST /api/v1/search** and read its neighbours.
Every autoencoder of the chapter trains as a background job (**POST /api/v1/train**) and can
be activated for search once trained.
"""

SUPERVISE_INTERVAL_S = 1.0
logger = logging.getLogger("aeseek")


async def _supervise(runtime: Runtime, jobs: JobManager | None) -> None:
    while True:
        await asyncio.sleep(SUPERVISE_INTERVAL_S)
        try:
            if jobs is not None:
                jobs.supervise()
            # Another serving worker, or the CLI, may have activated a model or changed the gallery.
            await asyncio.to_thread(runtime.follow_active)
        except Exception:  # this loop must outlive any one failure, or the process stops following
            logger.exception("supervising the training worker or following active.json failed")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: Runtime = app.state.runtime
    jobs: JobManager | None = app.state.jobs
    configure_threads(runtime.settings)
    app.state.idempotency.prune(running_too=True)  # requests a killed process was running are not running
    for removal in collect(runtime.workspace, runtime.settings.job_retention_days * 86400.0):
        logger.info("removed %s: %s (%d bytes)", removal.path, removal.why, removal.size)
    runtime.load_active()
    runtime.start_batching()
    # Torch, the gallery and the app are ~250k long-lived objects: a full collection over them
    # took ~110 ms and showed up as search p99. Freezing them leaves collections to new objects.
    gc.freeze()
    if jobs is not None:
        jobs.start()
    supervisor = asyncio.create_task(_supervise(runtime, jobs))
    try:
        yield
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        if jobs is not None:
            jobs.stop()
        runtime.stop_batching()


# The mutating POST routes that honour Idempotency-Key.
IDEMPOTENT_PATHS = re.compile(r"/api/v1/(gallery|train|models/[^/]+/activate|jobs/[^/]+/resume)")


def _add_middleware(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    # Added innermost first: the request passes RequestContext, CORS, the timeout and the body
    # limit before an idempotent route reads its (already size-checked) body.
    app.add_middleware(Idempotency, store=app.state.idempotency, paths=IDEMPOTENT_PATHS)
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
    if settings.require_key_for_reads:
        app.add_middleware(ReadGate, settings=settings)
    app.add_middleware(RequestContext, metrics=metrics)  # outermost: ids and timing cover everything


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model, gallery and training worker start in the lifespan, not here."""
    settings = settings or get_settings()
    refuse_weak_keys(settings)  # before anything listens: a weak key is as good as none
    app = FastAPI(
        title="aeseek",
        summary="Image search with autoencoders and FAISS.",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=_lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # served from local assets by app/api/routes/docs.py
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.runtime = Runtime(settings)
    app.state.jobs = JobManager(settings) if settings.jobs_enabled else None
    app.state.metrics = metrics = Metrics()
    app.state.idempotency = IdempotencyStore(settings.data_dir / "idempotency")
    metrics.watch_active(app.state.runtime.active_model)
    if app.state.jobs is not None:
        metrics.watch_jobs(app.state.jobs.store)
    install_error_handlers(app)
    _add_middleware(app, settings, metrics)
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(site_router)
    mount_static(app)
    mount_docs_assets(app)
    install_openapi(app, settings)
    return app


def create_worker_app() -> FastAPI:
    """The app of one `aeseek serve --workers N` process: settings from the environment, logging set up
    as `aeseek serve` sets it (a worker process starts fresh, without the CLI's configuration)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format == "json")
    return create_app(settings)
