"""Swagger UI and ReDoc render offline: Chromium with every request off loopback blocked."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest

from app.settings import Settings
from tests.helpers import live_server, playwright_expect, png_of


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    with live_server(settings, "/api/v1/ready") as url:
        yield url


def offline_page(browser: Any, blocked: list[str]) -> Any:
    """A page whose requests to anything but 127.0.0.1 fail (and are listed in `blocked`)."""
    page = browser.new_page(viewport={"width": 1280, "height": 2000})

    def only_loopback(route: Any) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith("data:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    return page


def operation_count(url: str) -> int:
    document = httpx.get(url + "/openapi.json").json()
    return sum(len(operations) for operations in document["paths"].values())


def test_swagger_ui_renders_every_operation_and_searches_offline(
    browser: Any, server: str, train_images: np.ndarray, tmp_path: Path
) -> None:
    blocked: list[str] = []
    page = offline_page(browser, blocked)
    page.goto(server + "/docs")
    operations = page.locator(".opblock")
    playwright_expect(operations).to_have_count(operation_count(server))
    search = page.locator("#operations-search-search")
    search.locator(".opblock-summary").click()
    search.get_by_role("button", name="Try it out").click()
    digit = tmp_path / "digit.png"
    digit.write_bytes(png_of(train_images[0]))
    search.locator("input[type=file]").set_input_files(str(digit))
    search.get_by_role("button", name="Execute").click()
    body = search.locator(".live-responses-table .response-col_description pre").first
    playwright_expect(body).to_contain_text('"results"')
    playwright_expect(search.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    assert not blocked, blocked  # nothing was even asked of the internet
    page.close()


def test_redoc_renders_every_operation_offline(browser: Any, server: str) -> None:
    blocked: list[str] = []
    page = offline_page(browser, blocked)
    page.goto(server + "/redoc")
    playwright_expect(page.locator("[data-section-id^='operation/']")).to_have_count(operation_count(server))
    assert not blocked, blocked
    page.close()
