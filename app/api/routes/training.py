"""Start training jobs (`/train`): one body per variant, told apart by its `variant` field."""

from __future__ import annotations

from typing import Annotated, Any, Union

from fastapi import APIRouter, Body, Query
from pydantic import Field

from app.api.deps import JobManagerDep
from app.api.errors import ERROR_RESPONSES
from app.api.security import WRITE_ROUTE
from app.services.jobs.store import JobRecord
from models.base import AutoencoderConfig
from models.registry import VARIANTS

router = APIRouter(tags=["training"])

CONFIG_TYPES = tuple(config for config, _ in VARIANTS.values())
# A discriminated union of every variant's config: Swagger shows each with its defaults.
TrainRequest = Annotated[Union[CONFIG_TYPES], Field(discriminator="variant")]  # type: ignore[valid-type] # noqa: UP007

EXAMPLES: dict[str, Any] = {
    "conv (tiny, 1 epoch)": {
        "summary": "The seed's conv autoencoder, a quick run",
        "value": {"variant": "conv", "training": {"epochs": 1, "train_subset": 2000}},
    },
    "sparse": {"summary": "Sparse autoencoder, rho 0.05", "value": {"variant": "sparse", "sparsity_target": 0.05}},
    "denoising overcomplete": {
        "summary": "Overcomplete denoising autoencoder (1000 hidden units)",
        "value": {"variant": "denoising", "code_dim": 1000, "corruption": "gaussian", "corruption_level": 0.3},
    },
    "stacked": {"summary": "Greedy layer-wise, then fine-tuned", "value": {"variant": "stacked"}},
    "vae": {"summary": "Variational autoencoder", "value": {"variant": "vae", "beta": 1.0}},
}


@router.post(
    "/train",
    **WRITE_ROUTE,
    status_code=202,
    response_model=JobRecord,
    responses={422: ERROR_RESPONSES[422], 429: {"model": ERROR_RESPONSES[422]["model"], "description": "Queue full."}},
    summary="Start a training job",
)
def start_training(
    jobs: JobManagerDep,
    config: Annotated[TrainRequest, Body(openapi_examples=EXAMPLES)],
    nproc: Annotated[
        int,
        Query(
            ge=1,
            description="Processes to train across (DistributedDataParallel on the worker's machine), from 1 to "
            "AESEEK_MAX_TRAIN_PROCESSES (default: one per CPU core). Kept in the job record: a resumed job "
            "trains across as many.",
        ),
    ] = 1,
) -> JobRecord:
    """Queue a training job for one variant's config. Omitted fields take their defaults
    (shown in the schema). Returns at once with the job; poll `GET /api/v1/jobs/{id}` for
    progress. Jobs run one at a time in a worker process, so searches keep being served."""
    assert isinstance(config, AutoencoderConfig)
    return jobs.submit(config, nproc)
