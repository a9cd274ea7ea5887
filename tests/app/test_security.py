from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.app.test_search_api import png_of

TRAIN = {"variant": "conv", "training": {"epochs": 1}}


@pytest.fixture
def make_client(settings: Settings) -> Iterator:
    clients: list[TestClient] = []

    def make(**changes: object) -> TestClient:
        client = TestClient(create_app(settings.model_copy(update=changes)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_without_keys_mutations_are_disabled_and_say_how_to_enable(make_client) -> None:
    client = make_client()
    for method, path in [
        ("POST", "/api/v1/train"),
        ("DELETE", "/api/v1/jobs/abc"),
        ("POST", "/api/v1/jobs/abc/resume"),
        ("POST", "/api/v1/models/abc/activate"),
    ]:
        response = client.request(method, path, json=TRAIN)
        assert response.status_code == 403, (method, path)
        body = response.json()
        assert body["code"] == "mutations_disabled" and "AESEEK_API_KEYS" in body["message"]


def test_missing_key_is_401_and_wrong_key_403(make_client) -> None:
    client = make_client(api_keys="alpha, beta")
    missing = client.post("/api/v1/train", json=TRAIN)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/v1/train", json=TRAIN, headers={"Authorization": "Basic alpha"}).status_code == 401
    wrong = client.post("/api/v1/train", json=TRAIN, headers={"Authorization": "Bearer gamma"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "forbidden"
    # A valid key passes authentication; jobs are disabled in this app, which says so.
    accepted = client.post("/api/v1/train", json=TRAIN, headers={"Authorization": "Bearer beta"})
    assert accepted.status_code == 503 and accepted.json()["code"] == "jobs_disabled"


def test_keys_from_a_file(make_client, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# operators\nfrom-file\n")
    client = make_client(api_keys_file=keys)
    assert client.post("/api/v1/train", json=TRAIN, headers={"Authorization": "Bearer from-file"}).status_code == 503
    assert client.post("/api/v1/train", json=TRAIN, headers={"Authorization": "Bearer other"}).status_code == 403


def test_open_mutations_for_development(make_client) -> None:
    client = make_client(allow_open_mutations=True)
    assert client.post("/api/v1/train", json=TRAIN).status_code == 503  # past auth, jobs disabled


def test_reads_are_open_by_default_and_can_be_closed(make_client) -> None:
    assert make_client().get("/api/v1/gallery/0").status_code == 200
    closed = make_client(api_keys="alpha", require_key_for_reads=True)
    assert closed.get("/api/v1/gallery/0").status_code == 401
    assert closed.get("/api/v1/gallery/0", headers={"Authorization": "Bearer alpha"}).status_code == 200
    assert closed.get("/api/v1/health").status_code == 200 and closed.get("/api/v1/ready").status_code == 200


def test_cors_is_off_by_default_and_configurable(make_client) -> None:
    origin = {"Origin": "https://example.org"}
    assert "access-control-allow-origin" not in make_client().get("/api/v1/health", headers=origin).headers
    allowed = make_client(cors_origins="https://example.org").get("/api/v1/health", headers=origin)
    assert allowed.headers["access-control-allow-origin"] == "https://example.org"


@pytest.mark.parametrize("batching", [True, False])
def test_slow_requests_time_out_with_504(
    make_client, monkeypatch: pytest.MonkeyPatch, full_mnist: dict, batching: bool
) -> None:
    import time

    from app.search_service import SearchService

    client = make_client(request_timeout_s=0.2, batching=batching)
    digit = png_of(full_mnist["train"].images[0])
    original = SearchService.search_images

    def slow(self: SearchService, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.0)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SearchService, "search_images", slow)
    response = client.post("/api/v1/search", files={"file": ("a.png", digit)})
    assert response.status_code == 504 and "AESEEK_REQUEST_TIMEOUT_S" in response.json()["message"]
    monkeypatch.setattr(SearchService, "search_images", original)
    time.sleep(1.0)  # the abandoned search finishes; the next one is answered normally
    assert client.post("/api/v1/search", files={"file": ("a.png", digit)}).status_code == 200
