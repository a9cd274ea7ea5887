"""Tests."""

from pathlib import Path

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
