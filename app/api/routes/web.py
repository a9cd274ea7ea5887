"""The web page at `/` and its static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parents[2] / "web" / "static"

router = APIRouter()
# The page loads its own script, style and pictures only: an injected string can run nothing.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


@router.get("/", include_in_schema=False)
async def get_web_page() -> FileResponse:
    """The single-page web client."""
    return FileResponse(WEB_DIR / "index.html", headers=PAGE_HEADERS)


def mount_static(app: FastAPI) -> None:
    """Serve the page's scripts and styles under /static."""
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
