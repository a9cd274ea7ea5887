"""One error format and one table of statuses: every domain error has a code, every code a status."""

import importlib
import json
import pkgutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import app
import index
import models
from app.api.errors import STATUS_BY_CODE
from models.errors import AeseekError, ErrorCode
from tests.helpers import serve


def all_subclasses(base: type) -> set[type]:
    found = set(base.__subclasses__())
    return found.union(*(all_subclasses(cls) for cls in found))


def domain_errors() -> set[type[AeseekError]]:
    """Every AeseekError subclass in the code base (each module imported first)."""
    for package in (models, index, app):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    return all_subclasses(AeseekError)


def test_every_domain_error_names_its_own_code() -> None:
    errors = domain_errors()
    assert len(errors) >= 20
    for error in errors:
        assert isinstance(error.code, ErrorCode), error
        inherited_default = error.code is AeseekError.code and "code" not in vars(error)
        assert not inherited_default, f"{error.__name__} has no code of its own"


def test_every_code_has_one_status() -> None:
    assert set(STATUS_BY_CODE) == set(ErrorCode)
    assert all(400 <= status <= 599 for status in STATUS_BY_CODE.values())


def test_a_corrupt_model_description_is_the_servers_fault(trained_copy: Path) -> None:
    [model_dir] = (trained_copy / "models").iterdir()
    description = json.loads((model_dir / "model.json").read_text())
    (model_dir / "model.json").write_text(json.dumps({**description, "config": {"variant": "conv", "channels": "x"}}))
    with serve(trained_copy, batching=False) as client:
        response = client.post(f"/api/v1/models/{model_dir.name}/reconstruct", files={"file": ("q.png", b"x")})
        assert response.status_code == 500 and response.json()["code"] == "checkpoint_corrupt", response.text
        assert "holds an invalid config" in response.json()["message"]
        (model_dir / "model.json").write_text("{not json")
        response = client.get(f"/api/v1/models/{model_dir.name}")
        assert response.status_code == 500 and response.json()["code"] == "checkpoint_corrupt", response.text


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
