"""A server with a real training worker, shared by the route tests of jobs, training and models."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers import JOBS_AUTH, JOBS_KEY, TINY_CONV, serving_settings, submit, wait_for


@pytest.fixture(scope="package")
def jobs_root(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty data directory over the small MNIST copy."""
    directory = tmp_path_factory.mktemp("jobs")
    (directory / "mnist").symlink_to(small_data_dir / "mnist")
    return directory


@pytest.fixture(scope="package")
def jobs_client(jobs_root: Path) -> Iterator[TestClient]:
    """The app with its training worker, authorised with the test key."""
    settings = serving_settings(jobs_root, jobs_enabled=True, api_keys=JOBS_KEY)
    with TestClient(create_app(settings), headers=JOBS_AUTH) as test_client:
        yield test_client


@pytest.fixture(scope="package")
def trained_job(jobs_client: TestClient) -> dict[str, Any]:
    """A tiny conv model trained through the API (the job record once it ended)."""
    job = submit(jobs_client, TINY_CONV)
    assert job["state"] == "queued" and job["variant"] == "conv"
    return wait_for(jobs_client, job["id"], {"succeeded", "failed"})


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright; skipped without it unless AESEEK_REQUIRE_BROWSER=1."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("AESEEK_REQUIRE_BROWSER") == "1":
            pytest.fail("AESEEK_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
        pytest.skip("no chromium on PATH: apt-get install chromium")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # fmt: skip
        yield launched
        launched.close()
