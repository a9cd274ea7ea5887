"""The OpenAPI document: fuzzed with schemathesis, and a client generated from it that works.

Property-based fuzzing of the whole schema (bounded):
Every operation gets generated requests, valid and not: no response may be a 5xx, and every
response must match its documented status and schema. A longer run is a documented command:
`AESEEK_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/app/api/test_openapi.py`.

(The schemathesis pytest plugin does not load under pytest 9 yet, so operations are
iterated here and each is driven by hypothesis directly.)"""

import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from app.main import create_app
from app.settings import Settings
from tests.helpers import live_server, png_of

EXAMPLES = int(os.environ.get("AESEEK_FUZZ_EXAMPLES", "20"))


@pytest.fixture(scope="module")
def schema(trained_dir: Path):  # type: ignore[no-untyped-def]
    # Jobs are enabled (job routes answer as in production) but no worker is started, and the
    # fuzzer has no valid key, so no training is ever queued.
    settings = Settings(data_dir=trained_dir, mnist_source="idx", bootstrap=False, api_keys="fuzz-test-key-0123456")
    app = create_app(settings)
    app.state.runtime.load_active()  # what the lifespan does; schemathesis calls the app directly
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_server_errors_and_responses_match_the_schema(schema) -> None:  # type: ignore[no-untyped-def]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    cases_run = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal cases_run
            cases_run += 1
            # A schema cannot say "a decodable image": schema-valid uploads may fairly get 4xx.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        fuzz()
    artifacts = Path("test-artifacts")
    artifacts.mkdir(exist_ok=True)
    summary = {"operations": len(operations), "cases": cases_run, "max_examples": EXAMPLES}
    (artifacts / "fuzz.json").write_text(json.dumps(summary) + "\n")


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert operation.get("description"), (method, path)
            assert operation.get("tags"), (method, path)
    search = spec["paths"]["/api/v1/search"]["post"]
    assert {"413", "415", "422"} <= set(search["responses"])
    assert client.get("/docs").status_code == 200


@pytest.mark.slow
def test_a_generated_client_searches_reads_the_gallery_and_downloads_a_png(
    settings: Settings, train_images: np.ndarray, tmp_path: Path
) -> None:
    """openapi-python-client on the live document: every operation kept, and the client works."""
    config = tmp_path / "config.yml"
    # The generator keeps binary responses of the content types it knows; PNG is binary too.
    config.write_text("content_type_overrides:\n  image/png: application/octet-stream\n")
    PATH = os.environ["PATH"]
    with live_server(settings, "/api/v1/ready") as url:
        document = tmp_path / "openapi.json"
        document.write_text(httpx.get(url + "/openapi.json").text)
        generated = subprocess.run(
            [
                sys.executable,
                "-m",
                "openapi_python_client",
                "generate",
                "--path",
                str(document),
                "--meta",
                "none",
                "--output-path",
                str(tmp_path / "aeseek_client"),
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{PATH}"},
        )  # fmt: skip  (ruff, which formats the generated code, sits beside this Python)
        assert generated.returncode == 0 and "Warning" not in generated.stdout + generated.stderr, generated.stdout
        sys.path.insert(0, str(tmp_path))
        try:
            client_module = importlib.import_module("aeseek_client")
            search = importlib.import_module("aeseek_client.api.search.search")
            gallery_get = importlib.import_module("aeseek_client.api.gallery.gallery_get")
            gallery_image = importlib.import_module("aeseek_client.api.gallery.gallery_image")
            models = importlib.import_module("aeseek_client.models")
            types = importlib.import_module("aeseek_client.types")
        finally:
            sys.path.remove(str(tmp_path))
        client = client_module.Client(base_url=url)
        upload = types.File(payload=io.BytesIO(png_of(train_images[0])), file_name="q.png", mime_type="image/png")
        found = search.sync(client=client, body=models.SearchBody(file=upload), k=3)
        assert found.results[0].id == 0 and len(found.results) == 3
        item = gallery_get.sync(item_id=found.results[1].id, client=client)
        assert item.label == found.results[1].label
        picture = gallery_image.sync(item_id=0, client=client, scale=2)
        assert picture.payload.read()[:8] == b"\x89PNG\r\n\x1a\n"
