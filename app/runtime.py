"""Process-level set-up of the service: thread counts and loading the active snapshot."""

from __future__ import annotations

import logging

import torch

from app.search_service import SearchService, Snapshot
from app.settings import Settings
from app.workspace import Workspace
from index.backend import set_search_threads
from models.errors import AeseekError
from models.preprocessing import DecodeLimits

logger = logging.getLogger("aeseek")


def configure_threads(settings: Settings) -> None:
    """Thread counts for query-time work (see the README's performance notes)."""
    torch.set_num_threads(settings.torch_threads)
    set_search_threads(settings.faiss_threads)


def load_search_service(settings: Settings) -> tuple[SearchService | None, str | None]:
    """The search service over the active model and gallery, or None and the reason."""
    workspace = Workspace(settings.data_dir, settings.mnist_source)
    try:
        model, record, gallery = workspace.load_active()
    except AeseekError as error:
        return None, str(error)
    logger.info("loaded model %s (%s) and a gallery of %d images", record.version, record.variant, len(gallery))
    limits = DecodeLimits(max_pixels=settings.max_image_pixels, max_bytes=settings.max_upload_bytes)
    return SearchService(Snapshot(model, record, gallery), limits), None
