"""The bad-input corpus against the real service: a clear 4xx each, and the server keeps serving."""

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/gallery/123456789", 404),
        ("/api/v1/gallery/-5", 422),
        ("/api/v1/gallery/99999999999999999999999", 422),
        ("/api/v1/gallery/1/image?scale=0", 422),
        ("/api/v1/models/not-a-version", 404),
        ("/api/v1/models/..%2F..%2Fetc/loss.png", 404),
    ],
)
def test_unknown_and_malformed_ids(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.json()["code"] in ("not_found", "validation_error")


def test_unknown_route_uses_the_error_format(client: TestClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
