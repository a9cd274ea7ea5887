"""Path and query parameters that several routes take, declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

LabelFilter = Annotated[
    int | None, Query(ge=0, description="Only gallery items with this label (filtered inside the index search).")
]
ItemId = Annotated[int, Path(ge=0, le=2**63 - 1, description="Gallery id, as returned by a search.")]
Version = Annotated[str, Path(description="Model version id (12 hex digits).", max_length=64)]
JobId = Annotated[str, Path(description="Job id, as returned by POST /api/v1/train.", max_length=64)]
# k has no upper bound here: AESEEK_MAX_K is checked by `within_max_k` and shown in the OpenAPI document.
NeighbourCount = Annotated[int, Query(ge=1, description="How many neighbours to return.")]
NeighboursPerImage = Annotated[int, Query(ge=1, description="Neighbours per image.")]
OtherNeighbourCount = Annotated[int, Query(ge=1, description="How many neighbours.")]
