"""Property-based fuzzing of the whole OpenAPI schema with schemathesis (bounded).

Every operation gets generated requests, valid and not: no response may be a 5xx, and every
response must match its documented status and schema. A longer run is a documented command:
`AESEEK_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/app/api/test_openapi.py`.

(The schemathesis pytest plugin does not load under pytest 9 yet, so operations are
iterated here and each is driven by hypothesis directly.)"""

import json
import os
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from app.main import create_app
from app.settings import Settings

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
