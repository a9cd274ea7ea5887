"""Swagger UI at /docs and ReDoc at /redoc, from assets shipped with the service (no CDN).

The Swagger UI and ReDoc bundles and the favicon come from the `fastapi-offline` package
(pinned in constraints.txt), which packages the official swagger-ui-dist and redoc
distributions; they are served under /static-docs. FastAPI's own pages would load them from
cdn.jsdelivr.net and render nothing where the internet is out of reach.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static-docs"
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
OPENAPI_URL = "/openapi.json"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
TITLE = "aeseek"

router = APIRouter()
# The pages may load what this server serves and nothing else: ReDoc's bundle links a logo on
# cdn.redoc.ly, which the browser then never asks for. Both pages start with an inline script
# and ReDoc styles itself inline; its search runs in a blob: worker.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'",
}


@router.get("/docs", include_in_schema=False)
async def get_swagger_ui() -> HTMLResponse:
    """Swagger UI over the OpenAPI document."""
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
    )
    page.headers.update(DOCS_HEADERS)
    return page


@router.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
async def get_swagger_ui_redirect() -> HTMLResponse:
    """The page Swagger UI's OAuth2 flow returns to."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", include_in_schema=False)
async def get_redoc() -> HTMLResponse:
    """ReDoc over the OpenAPI document (system fonts: no Google Fonts request)."""
    page = get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - ReDoc",
        redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
    page.headers.update(DOCS_HEADERS)
    return page


def mount_assets(app: FastAPI) -> None:
    """Serve the Swagger UI and ReDoc bundles."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="static-docs")
