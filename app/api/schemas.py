"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from index.gallery import GalleryItem, Neighbour
from models.checkpoints import ModelRecord
from models.errors import ErrorCode


class ErrorBody(BaseModel):
    """The one error format of every 4xx/5xx response."""

    code: ErrorCode = Field(description="Machine-readable kind of error.", examples=["no_ink"])
    message: str = Field(
        description="What was wrong and what to do.",
        examples=["the image has no ink: it is blank or a single colour, nothing to search for"],
    )
    details: Any = Field(None, description="Extra structured information, e.g. the failing fields.")


class ModelRef(BaseModel):
    """Which model answered."""

    version: str = Field(examples=["3f2a9c1b7d10"])
    variant: str = Field(examples=["conv"])

    @classmethod
    def of(cls, record: ModelRecord) -> ModelRef:
        """The reference to a saved model."""
        return cls(version=record.version, variant=record.variant)


class GalleryItemPublic(BaseModel):
    """Metadata of one gallery image."""

    id: int = Field(examples=[7])
    split: str = Field(description="MNIST split the image comes from.", examples=["train"])
    index: int = Field(description="Position of the image in its split.", examples=[7])
    label: int = Field(description="The digit drawn.", examples=[3])
    image_url: str = Field(examples=["/api/v1/gallery/7/image"])
    metadata: dict[str, Any] | None = Field(None, description="Free metadata given when the image was added.")

    @classmethod
    def of(cls, item: GalleryItem) -> GalleryItemPublic:
        """The public view of a gallery item."""
        return cls(
            id=item.id, split=item.split, index=item.index, label=item.label, image_url=image_url(item.id),
            metadata=item.metadata,
        )  # fmt: skip


class GalleryItemList(BaseModel):
    """Gallery items."""

    data: list[GalleryItemPublic]
    count: int


class SearchResult(BaseModel):
    """One neighbour of the query."""

    rank: int = Field(ge=1, examples=[1])
    id: int = Field(examples=[7])
    distance: float = Field(ge=0, description="Euclidean distance between the codes.", examples=[1.84])
    score: float = Field(
        gt=0,
        le=1,
        description="Similarity in (0, 1]: 1 / (1 + distance / s), where s is the gallery's median "
        "distance to a 10th nearest neighbour; 1 is identical, 0.5 a typical close neighbour.",
        examples=[0.71],
    )
    label: int = Field(examples=[3])
    image_url: str = Field(examples=["/api/v1/gallery/7/image"])


def image_url(item_id: int) -> str:
    """Where a gallery image is served."""
    return f"/api/v1/gallery/{item_id}/image"


def results_of(neighbours: list[Neighbour]) -> list[SearchResult]:
    """Neighbours as API results."""
    return [
        SearchResult(
            rank=n.rank, id=n.item.id, distance=n.distance, score=n.score, label=n.item.label,
            image_url=image_url(n.item.id),
        )
        for n in neighbours
    ]  # fmt: skip


class SearchResponse(BaseModel):
    """The nearest gallery images of a query, nearest first."""

    model: ModelRef
    query_ms: float = Field(description="Time spent answering, in milliseconds.", examples=[3.2])
    timings_ms: dict[str, float] = Field(
        description="Time per stage: decode, preprocess, encode, search, and queue (waiting for a micro-batch).",
        examples=[{"decode": 0.3, "preprocess": 0.4, "encode": 1.1, "search": 1.0}],
    )
    results: list[SearchResult]
    query_png: str | None = Field(None, description="With debug=true: base64 PNG of the 28x28 image the model saw.")
    reconstruction_png: str | None = Field(
        None, description="With debug=true: base64 PNG of the model's reconstruction of it."
    )
    query_code: list[float] | None = Field(None, description="With debug=true: the query's code.")


class LatentMap(BaseModel):
    """A 2-D PCA projection of (a sample of) the active gallery's codes, for plotting."""

    model: ModelRef
    points: list[tuple[float, float, int]] = Field(description="(x, y, label) per sampled gallery image.")
    mean: list[float] = Field(description="Mean code; project a code c as components @ (c - mean).")
    components: list[list[float]] = Field(description="The two principal directions (2 x code_dim).")
    bounds: tuple[float, float, float, float] = Field(description="min x, max x, min y, max y of the points.")
    explained_variance: tuple[float, float] = Field(description="Share of the codes' variance on each axis.")


class VariantInfo(BaseModel):
    """A trainable variant and its default config."""

    variant: str
    summary: str
    defaults: dict[str, Any]


class VariantList(BaseModel):
    """Every trainable variant."""

    data: list[VariantInfo]
    count: int


class BatchItem(BaseModel):
    """The answer to one file of a batch: its neighbours, or its own error."""

    index: int = Field(description="Position of the file in the request.")
    filename: str | None = None
    status: int = Field(description="200, or the status this file alone would have got.", examples=[200])
    results: list[SearchResult] | None = None
    error: ErrorBody | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)


class BatchSearchResponse(BaseModel):
    """Neighbours of several query images, each answered separately, from one model."""

    model: ModelRef
    query_ms: float
    count: int
    items: list[BatchItem]


class HealthResponse(BaseModel):
    """Liveness."""

    status: str = Field(examples=["ok"])


class ReadyResponse(BaseModel):
    """Readiness: a model and its gallery are loaded."""

    status: str = Field(examples=["ready"])
    model: ModelRef
    gallery_size: int = Field(examples=[60000])


class ModelPublic(BaseModel):
    """A trained model: what it is, how it was trained, how well it retrieves."""

    version: str
    variant: str
    config: dict[str, Any]
    parameters: int
    created: float = Field(description="Unix time of training.")
    history: dict[str, Any] = Field(description="Loss per epoch, seconds, images seen.")
    metrics: dict[str, Any] = Field(description="Results of `aeseek eval`, when it has been run.")
    active: bool = Field(False, description="Whether this model answers searches now.")
    gallery: str | None = Field(None, description="Which MNIST splits the active gallery holds.")
    gallery_size: int | None = None


class ModelList(BaseModel):
    """Trained models, newest first."""

    data: list[ModelPublic]
    count: int


class FeedbackRequest(BaseModel):
    """A query (a code from an earlier answer, or gallery ids) and the results a person marked."""

    code: list[Annotated[float, Field(ge=-1e9, le=1e9)]] | None = Field(
        None, max_length=4096, description="The query's code: `query_code` of a search with debug=true, or of "
        "an earlier feedback answer (rounds chain)."
    )  # fmt: skip
    ids: list[int] | None = Field(None, max_length=100, description="Or: gallery items whose mean code is the query.")
    relevant: list[int] = Field(default_factory=list, max_length=100, description="Gallery ids marked relevant.")
    not_relevant: list[int] = Field(
        default_factory=list, max_length=100, description="Gallery ids marked not relevant (left out of the answer)."
    )
    k: int = Field(10, ge=1, description="How many neighbours to return.")
    label: int | None = Field(None, ge=0, description="Only gallery items with this label.")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"code": [0.1] * 16, "relevant": [7, 12], "not_relevant": [3], "k": 10}],
        },
    )


class SimilarRequest(BaseModel):
    """Gallery items to find more like."""

    ids: list[int] = Field(min_length=1, max_length=100, description="Gallery ids; the answer leaves them out.")
    k: int = Field(10, ge=1, description="How many neighbours to return.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ids": [7, 12, 40], "k": 10}]})
