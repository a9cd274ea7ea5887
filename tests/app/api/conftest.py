"""Fixtures of the HTTP layer's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Build started test clients over the tiny trained model with some settings changed."""
    clients: list[TestClient] = []

    def make(**changes: object) -> TestClient:
        client = TestClient(create_app(settings.model_copy(update=changes)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
