"""Prometheus metrics and structured (JSON) logs with request ids (set by app/api/middleware.py)."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

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


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aeseek_requests_total", "HTTP requests.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "aeseek_request_seconds", "HTTP request latency.", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.stages = Histogram(
            "aeseek_search_stage_seconds", "Time per search stage.", ["stage"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_sizes = Histogram(
            "aeseek_search_batch_size", "Queries encoded together with each search.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry,
        )  # fmt: skip
        self.gallery_size = Gauge("aeseek_gallery_size", "Images in the active gallery.", registry=self.registry)
        self.model_info = Gauge(
            "aeseek_active_model_info", "The active model (value 1).", ["version", "variant"], registry=self.registry
        )
        self._stage_children: dict[str, Any] = {}
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def watch_jobs(self, store: JobStore) -> None:
        """Report job states and durations from this store."""
        self.registry.register(JobCollector(store))

    def set_active(self, version: str, variant: str, gallery_size: int) -> None:
        """Record which model answers and how large its gallery is."""
        self.model_info.clear()
        self.model_info.labels(version=version, variant=variant).set(1)
        self.gallery_size.set(gallery_size)

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
