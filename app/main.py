"""The FastAPI application: `create_app(settings)` builds it, its lifespan loads model and gallery once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from app.api.router import api_router
from app.errors import install_error_handlers
from app.middleware import BodySizeLimit
from app.runtime import configure_threads, load_search_service
from app.settings import Settings, get_settings

logger = logging.getLogger("aeseek")

DESCRIPTION = """
Content-based image retrieval with autoencoders. A convolutional autoencoder maps each
gallery image (MNIST by default) to a 16-d code; a FAISS index finds the codes nearest to
a query's. Upload a picture of a digit to **POST /api/v1/search** and read its neighbours.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model and gallery are loaded by the lifespan, not here."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_threads(settings)
        app.state.search_service, app.state.not_ready_reason = load_search_service(settings)
        if app.state.search_service is None:
            logger.warning("not ready: %s", app.state.not_ready_reason)
        yield

    app = FastAPI(
        title="aeseek",
        summary="Image search with autoencoders and FAISS.",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.search_service = None
    app.state.not_ready_reason = "starting"
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.include_router(api_router, prefix="/api/v1")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
