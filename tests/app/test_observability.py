"""Tests."""

from pathlib import Path

import pytest


def test_json_logs_carry_the_request_id() -> None:
    import json
    import logging

    from app.services.observability import JsonFormatter, request_id_var

    token = request_id_var.set("req-42")
    try:
        record = logging.LogRecord("aeseek", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello world" and line["request_id"] == "req-42" and line["level"] == "info"


def _count_requests(directory: str, count: int) -> None:
    import os

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # before prometheus_client is imported, as a worker
    from app.services.observability import Metrics

    metrics = Metrics()
    for _ in range(count):
        metrics.observe_request("GET", "/api/v1/health", 200, 0.002)


def test_with_a_metrics_directory_a_scrape_sums_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    from prometheus_client import generate_latest

    from app.services.observability import Metrics

    context = multiprocessing.get_context("spawn")  # fresh interpreters, as the supervisor starts them
    workers = [context.Process(target=_count_requests, args=(str(tmp_path), count)) for count in (3, 4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics = Metrics()
    metrics.watch_active(lambda: ("abc123", "conv", 600))
    text = generate_latest(metrics.registry).decode()
    assert 'aeseek_requests_total{method="GET",route="/api/v1/health",status="200"} 7.0' in text
    assert 'aeseek_request_seconds_count{method="GET",route="/api/v1/health"} 7.0' in text
    assert 'aeseek_active_model_info{variant="conv",version="abc123"} 1.0' in text
    assert "aeseek_gallery_size 600.0" in text
