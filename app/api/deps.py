"""Typed dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import ApiError
from app.search_service import SearchService
from app.settings import Settings


def get_settings_dependency(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_search_service(request: Request) -> SearchService:
    """The loaded search service, or a 503 until a model and gallery are loaded."""
    service: SearchService | None = request.app.state.search_service
    if service is None:
        raise ApiError(
            "not_ready",
            request.app.state.not_ready_reason or "no model and gallery loaded yet",
        )
    return service


SettingsDep = Annotated[Settings, Depends(get_settings_dependency)]
SearchServiceDep = Annotated[SearchService, Depends(get_search_service)]
