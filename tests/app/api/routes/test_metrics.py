"""/metrics: Prometheus text with request counts by route template, search stages and the active model."""

import numpy as np
from fastapi.testclient import TestClient

from tests.helpers import png_of, search


def test_metrics_count_requests_by_route_and_describe_the_active_model(
    client: TestClient, train_images: np.ndarray
) -> None:
    search(client, png_of(train_images[2]))
    client.get("/api/v1/gallery/12345")  # counted under its template, not its id
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'aeseek_requests_total{method="POST",route="/api/v1/search",status="200"}' in text
    assert 'route="/api/v1/gallery/{item_id}",status="404"' in text and "/gallery/12345" not in text
    assert 'aeseek_search_stage_seconds_count{stage="encode"}' in text
    assert "aeseek_gallery_size 600.0" in text
    assert 'aeseek_active_model_info{variant="conv"' in text


def test_made_up_methods_share_one_series(client: TestClient) -> None:
    for index in range(30):
        client.request(f"BREW{index}", "/api/v1/health")
    text = client.get("/metrics").text
    assert "BREW" not in text and 'method="OTHER"' in text
