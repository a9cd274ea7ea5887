"""API keys: who may change the service and, when closed, read it; weak keys; what a reader may see."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.security import ServerMisconfiguredError
from app.main import create_app
from app.services.jobs.worker import public_error
from app.settings import Settings

TRAIN = {"variant": "conv", "training": {"epochs": 1}}


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
    client = make_client(api_keys="alpha-key-0123456789, beta-key-01234567890")
    missing = client.post("/api/v1/train", json=TRAIN)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    basic = {"Authorization": "Basic alpha-key-0123456789"}
    assert client.post("/api/v1/train", json=TRAIN, headers=basic).status_code == 401
    wrong = client.post("/api/v1/train", json=TRAIN, headers={"Authorization": "Bearer gamma"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "forbidden"
    # A valid key passes authentication; jobs are disabled in this app, which says so.
    accepted = client.post("/api/v1/train", json=TRAIN, headers={"Authorization": "Bearer beta-key-01234567890"})
    assert accepted.status_code == 503 and accepted.json()["code"] == "jobs_disabled"


def test_keys_from_a_file(make_client, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# operators\nfrom-file-key-0123456\n")
    client = make_client(api_keys_file=keys)
    from_file = {"Authorization": "Bearer from-file-key-0123456"}
    assert client.post("/api/v1/train", json=TRAIN, headers=from_file).status_code == 503
    assert client.post("/api/v1/train", json=TRAIN, headers={"Authorization": "Bearer other"}).status_code == 403


def test_open_mutations_for_development(make_client) -> None:
    client = make_client(allow_open_mutations=True)
    assert client.post("/api/v1/train", json=TRAIN).status_code == 503  # past auth, jobs disabled


def test_reads_are_open_by_default_and_can_be_closed(make_client) -> None:
    assert make_client().get("/api/v1/gallery/0").status_code == 200
    closed = make_client(api_keys="alpha-key-0123456789", require_key_for_reads=True)
    assert closed.get("/api/v1/gallery/0").status_code == 401
    assert closed.get("/api/v1/gallery/0", headers={"Authorization": "Bearer alpha-key-0123456789"}).status_code == 200
    assert closed.get("/api/v1/health").status_code == 200 and closed.get("/api/v1/ready").status_code == 200


def test_closed_reads_close_everything_but_the_probes(make_client) -> None:  # type: ignore[no-untyped-def]
    closed = make_client(api_keys="alpha-key-0123456789", require_key_for_reads=True)
    key = {"Authorization": "Bearer alpha-key-0123456789"}
    for path in ("/metrics", "/docs", "/redoc", "/openapi.json", "/", "/static/app.js"):
        refused = closed.get(path)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated", path
        assert closed.get(path, headers=key).status_code == 200, path
    assert closed.get("/api/v1/ready").status_code == 200


@pytest.mark.parametrize("keys", ["change-me", "short-key", "good-key-0123456789,changeme"])
def test_weak_keys_are_refused_at_start(settings: Settings, keys: str) -> None:
    with pytest.raises(ServerMisconfiguredError, match="too weak"):
        create_app(settings.model_copy(update={"api_keys": keys}))


def test_job_errors_do_not_show_server_paths(tmp_path: Path) -> None:
    data = tmp_path / "data"
    error = FileNotFoundError(f"[Errno 2] No such file: '{data}/models/abc/model.json' (from /usr/lib/x.py)")
    public = public_error(error, data)
    assert str(tmp_path) not in public and "/usr/lib" not in public
    assert public == "FileNotFoundError: [Errno 2] No such file: '<data>/models/abc/model.json' (from <path>)"


def test_the_web_page_forbids_inline_and_foreign_scripts(client: TestClient) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    script = client.get("/static/app.js").text
    assert "innerHTML" not in script  # job errors and variants are inserted as text, never as markup
