"""Prometheus metrics and structured (JSON) logs with request ids (set by app/api/middleware.py).

With several serve workers (app/workers.py) the supervisor names a fresh directory in
PROMETHEUS_MULTIPROC_DIR before it starts them: prometheus_client then keeps every worker's
counters and histograms in memory-mapped files there, and a scrape answered by any worker sums
them all (its multiprocess mode), so `/metrics` describes the service, not one process. What is
read at scrape time (the active model, gallery size, jobs) comes from collectors instead.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # annotations only: the supervisor (app/workers.py) imports this module without torch
    from app.services.jobs.store import JobStore
    from app.services.search import SearchOutcome

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class JobCollector(Collector):
    """Job counts by state and durations by variant, read from the job records at scrape time."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        states = GaugeMetricFamily("aeseek_jobs", "Training jobs by state.", labels=["state"])
        durations = SummaryMetricFamily(
            "aeseek_job_duration_seconds", "Run time of finished training jobs.", labels=["variant"]
        )
        counts: dict[str, int] = {}
        by_variant: dict[str, list[float]] = {}
        for record in self.store.all():
            counts[record.state] = counts.get(record.state, 0) + 1
            if record.started is not None and record.finished is not None:
                by_variant.setdefault(record.variant, []).append(record.finished - record.started)
        for state in ("queued", "running", "succeeded", "failed", "cancelled", "interrupted"):
            states.add_metric([state], counts.get(state, 0))
        for variant, values in sorted(by_variant.items()):
            durations.add_metric([variant], count_value=len(values), sum_value=sum(values))
        yield states
        yield durations


# The active model's version and variant, and its gallery's size; None before one is loaded.
ActiveModel = tuple[str, str, int]
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class ActiveModelCollector(Collector):
    """The model answering searches (value 1) and its gallery's size, read at scrape time."""

    def __init__(self, active: Callable[[], ActiveModel | None]) -> None:
        self.active = active

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "aeseek_active_model_info", "The active model (value 1).", labels=["version", "variant"]
        )
        size = GaugeMetricFamily("aeseek_gallery_size", "Images in the active gallery.")
        active = self.active()
        if active is not None:
            version, variant, gallery_size = active
            info.add_metric([version, variant], 1)
            size.add_metric([], gallery_size)
        yield info
        yield size


def multiprocess_dir() -> str | None:
    """The directory where worker processes keep their metrics, when the service runs several."""
    return os.environ.get(MULTIPROCESS_DIR) or None


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app).

    `registry` is what a scrape reads: this process's metrics, or with several workers
    (`multiprocess_dir`) the sum over all of them; the collectors read at scrape time join it.
    """

    def __init__(self) -> None:
        self.registry = own = CollectorRegistry()
        directory = multiprocess_dir()
        if directory is not None:  # values live in the directory's files; this registry only names them
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, path=directory)
        self.requests = Counter("aeseek_requests_total", "HTTP requests.", ["method", "route", "status"], registry=own)
        self.latency = Histogram(
            "aeseek_request_seconds", "HTTP request latency.", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=own,
        )  # fmt: skip
        self.stages = Histogram(
            "aeseek_search_stage_seconds", "Time per search stage.", ["stage"],
            buckets=LATENCY_BUCKETS, registry=own,
        )  # fmt: skip
        self.batch_sizes = Histogram(
            "aeseek_search_batch_size", "Queries encoded together with each search.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=own,
        )  # fmt: skip
        self._stage_children: dict[str, Any] = {}
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def watch_jobs(self, store: JobStore) -> None:
        """Report job states and durations from this store."""
        self.registry.register(JobCollector(store))

    def watch_active(self, active: Callable[[], ActiveModel | None]) -> None:
        """Report the active model and its gallery's size from this callable."""
        self.registry.register(ActiveModelCollector(active))

    def observe_search(self, outcome: SearchOutcome) -> None:
        """Per-stage timings (milliseconds in the outcome) and the batch the query was part of."""
        for stage, milliseconds in outcome.timings_ms.items():
            child = self._stage_children.get(stage)
            if child is None:  # labels() builds and locks on every call; a search observes six stages
                child = self._stage_children[stage] = self.stages.labels(stage=stage)
            child.observe(milliseconds / 1000.0)
        self.batch_sizes.observe(outcome.batch_size)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, with the request id; exceptions as text, never to clients."""

    FIELDS = ("method", "path", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        entry.update({field: getattr(record, field) for field in self.FIELDS if hasattr(record, field)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted, not the stream it was when made
    (a test harness or a daemoniser may swap it; a closed one would make every log line an error)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: str, json_logs: bool) -> None:
    """Root logging: plain text with request ids, or JSON lines."""
    handler = StderrHandler()
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
