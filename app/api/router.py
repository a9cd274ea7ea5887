"""All routes of the API, mounted under /api/v1."""

from fastapi import APIRouter

from app.api.routes import gallery, health, jobs, model_pictures, search, trained_models, training

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(search.router)
api_router.include_router(gallery.router)
api_router.include_router(training.router)
api_router.include_router(jobs.router)
api_router.include_router(trained_models.router)
api_router.include_router(model_pictures.router)
