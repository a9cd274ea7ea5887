"""All routes of the API, mounted under /api/v1."""

from fastapi import APIRouter

from app.api.routes import gallery, health, search, trained_models

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(search.router)
api_router.include_router(gallery.router)
api_router.include_router(trained_models.router)
