"""Model activation under load: a real uvicorn server, concurrent searches, repeated swaps."""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from app.services.workspace import Workspace
from app.settings import Settings
from models.data.mnist import MnistSplit
from tests.helpers import encode, live_server, tiny_config

KEY = "swap-test-key-0123456"


SWAPS = 12


CLIENTS = 6


@pytest.fixture
def server(trained_copy: Path) -> Iterator[tuple[str, str, str]]:
    root = trained_copy
    workspace = Workspace(root, "idx")
    first = workspace.active()
    assert first is not None
    second = workspace.train(tiny_config(seed=11, epochs=1))
    workspace.build_gallery(second.version)
    settings = Settings(data_dir=root, mnist_source="idx", bootstrap=False, jobs_enabled=False, api_keys=KEY)
    with live_server(settings, "/api/v1/ready") as url:
        yield url, first.model_version, second.version


def test_swapping_models_under_load_loses_nothing_and_never_mixes(
    server: tuple[str, str, str], full_mnist: dict[str, MnistSplit]
) -> None:
    url, first, second = server
    query = encode(Image.fromarray(full_mnist["test"].images[0]))
    auth = {"Authorization": f"Bearer {KEY}"}

    def results_of(response: httpx.Response) -> list[tuple[int, float]]:
        return [(r["id"], round(r["distance"], 4)) for r in response.json()["results"]]

    # What each model answers for the query, when nothing else is happening.
    expected: dict[str, list[tuple[int, float]]] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for version in (second, first):
            assert client.post(f"/api/v1/models/{version}/activate", headers=auth).status_code == 200
            expected[version] = results_of(client.post("/api/v1/search", files={"file": ("q.png", query)}))
    assert expected[first] != expected[second]

    stop = threading.Event()
    outcomes: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def search_forever() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                try:
                    response = client.post("/api/v1/search", files={"file": ("q.png", query)})
                except httpx.HTTPError as error:
                    with lock:
                        outcomes.append((-1, repr(error)))
                    continue
                with lock:
                    outcomes.append((response.status_code, response.json()))

    threads = [threading.Thread(target=search_forever) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    with httpx.Client(base_url=url, timeout=60) as client:
        for swap in range(SWAPS):
            version = second if swap % 2 == 0 else first
            response = client.post(f"/api/v1/models/{version}/activate", headers=auth)
            assert response.status_code == 200, response.text
            time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()

    failures = [outcome for outcome in outcomes if outcome[0] != 200]
    assert failures == [], failures[:3]
    answered_by = {first: 0, second: 0}
    for _, body in outcomes:
        version = body["model"]["version"]
        answered_by[version] += 1
        assert [(r["id"], round(r["distance"], 4)) for r in body["results"]] == expected[version]
    assert len(outcomes) > SWAPS and all(count > 0 for count in answered_by.values())
    summary = {"swaps": SWAPS, "clients": CLIENTS, "searches": len(outcomes), "failed": len(failures)}
    artifacts = Path("test-artifacts")
    artifacts.mkdir(exist_ok=True)
    (artifacts / "swap_under_load.json").write_text(json.dumps({**summary, "answered_by": answered_by}) + "\n")
