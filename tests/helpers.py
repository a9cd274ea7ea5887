"""Helpers the tests share: image encoders, hostile inputs, tiny configs, a live server."""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from models.data.preprocessing import DecodeLimits, decode_image, to_grayscale, to_mnist
from models.variants.conv import ConvConfig

MULTIPART_BOUNDARY = "b0undary"
MULTIPART_CONTENT_TYPE = f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"


def tiny_config(**training: object) -> ConvConfig:
    """The seed's architecture with few channels, trained briefly, on plain reconstruction: two epochs over 600
    images teach too little to learn from distorted views (tests/models/data/test_augment.py covers those)."""
    fields = {"epochs": 2, "batch_size": 64, "lr": 3e-3, "seed": 0, **training}
    return ConvConfig.model_validate({"channels": (8, 16, 32), "augment": False, "training": fields})


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    """An image as the bytes of a file in `fmt`."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_of(image: np.ndarray) -> bytes:
    """A uint8 (H, W) array as PNG bytes."""
    return encode(Image.fromarray(image))


def preprocess(data: bytes, limits: DecodeLimits | None = None) -> np.ndarray:
    """Uploaded bytes -> the uint8 (28, 28) image the model sees (what the search service does)."""
    return to_mnist(to_grayscale(decode_image(data, limits or DecodeLimits())))


def paper_scan(digit: np.ndarray, size: int = 280) -> Image.Image:
    """The digit as dark ink on white paper, enlarged, off-centre in a larger page."""
    ink = Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BICUBIC)
    page = Image.new("L", (size * 2, int(size * 1.5)), 255)
    page.paste(ink, (size // 3, size // 5))
    return page


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart body of (name, filename or None for a plain field, data) parts."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{MULTIPART_BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + data + b"\r\n"
    return body + f"--{MULTIPART_BOUNDARY}--\r\n".encode()


def serving_settings(root: Path, **overrides: object) -> Settings:
    """Settings that serve the data directory `root` as tests need it (no bootstrap, no worker)."""
    fields: dict[str, object] = {"data_dir": root, "mnist_source": "idx", "bootstrap": False, "jobs_enabled": False}
    return Settings(**{**fields, **overrides})  # type: ignore[arg-type]


def serve(root: Path, headers: dict[str, str] | None = None, **overrides: object) -> TestClient:
    """A test client over the app serving `root`; use it in a `with` block so the lifespan runs."""
    return TestClient(create_app(serving_settings(root, **overrides)), headers=headers)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(settings: Settings, ready_path: str = "/api/v1/health") -> Iterator[str]:
    """Serve the app with uvicorn in a thread until the block ends; yields its URL once `ready_path` answers 200."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + ready_path).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


JOBS_KEY = "jobs-test-key-0123456"
JOBS_AUTH = {"Authorization": f"Bearer {JOBS_KEY}"}
TINY_CONV = {"variant": "conv", "channels": [8, 16, 32], "training": {"epochs": 2, "batch_size": 64}}
WAIT_S = 180  # an upper bound on waiting for a state, not a performance assertion


def wait_for(client: TestClient, job_id: str, states: set[str], condition: Any = None) -> dict[str, Any]:
    """Poll a job until it reaches one of `states` (and `condition`, if given)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in states and (condition is None or condition(job)):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {states}: {job}")


def submit(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    """Start a training job; it must be accepted."""
    response = client.post("/api/v1/train", json=body)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def search(client: TestClient, data: bytes, **params: object) -> dict[str, Any]:
    """POST an image to /api/v1/search; the answer must be a 200."""
    response = client.post("/api/v1/search", params=params, files={"file": ("q.png", data, "image/png")})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def run_bench(workspace_dir: Path, *args: str) -> Path:
    """Run `aeseek bench ... --quick` on a data directory; returns where the results went."""
    from app.cli import main

    out = workspace_dir / "results"
    assert main(["--data-dir", str(workspace_dir), "bench", *args, "--quick", "--out", str(out)]) == 0
    return out


def bench_results(out: Path, name: str) -> Any:
    """The `results` of a benchmark's JSON document, checked to say it was a quick run on a real machine."""
    document = json.loads((out / f"{name}.json").read_text())
    assert document["quick"] is True and document["machine"]["cores"] >= 1
    return document["results"]


def chance_precision(splits: dict[str, Any], gallery_size: int = 600, queries: int = 200) -> float:
    """P@k of a ranking that ignores the images: the chance a random gallery item shares the query's label.

    Computed on the small test protocol (the first `queries` test images against the first
    `gallery_size` training images), the baseline that a trained model must clearly beat.
    """
    gallery = np.bincount(splits["train"].labels[:gallery_size], minlength=10) / gallery_size
    asked = np.bincount(splits["test"].labels[:queries], minlength=10) / queries
    return float((gallery * asked).sum())


def run_until_killed(root: str, operation: str, argument: str, kill_at: int, ack: str) -> None:
    """Crash-test child: perform one change on the data directory `root`, SIGKILLed at its `kill_at`-th
    durable step (an fsync, a rename or a directory removal), and write what it acknowledges to `ack`.

    With kill_at 0 nothing is killed and `ack` also gets the number of steps the change took.
    """
    import os
    import shutil
    import signal

    from app.services.runtime import Runtime

    steps = 0

    def counted(function: Any) -> Any:
        def step(*args: Any, **kwargs: Any) -> Any:
            nonlocal steps
            steps += 1
            if steps == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)

        return step

    os.fsync, os.replace = counted(os.fsync), counted(os.replace)  # type: ignore[assignment]
    shutil.rmtree = counted(shutil.rmtree)  # type: ignore[assignment]
    runtime = Runtime(serving_settings(Path(root), batching=False))
    runtime.load_active()
    acknowledged: dict[str, Any] = {}
    if operation == "add":
        images = np.load(Path(root) / "query-images.npy")
        added = runtime.add_to_gallery([png_of(image) for image in images], [1, 2, 3], [None, {"n": 2}, None])
        acknowledged["ids"] = [item.id for item in added]
    elif operation == "delete":
        runtime.remove_from_gallery(int(argument))
        acknowledged["deleted"] = int(argument)
    elif operation == "activate":
        acknowledged["version"] = runtime.activate(argument).record.version
    elif operation == "train":
        acknowledged["version"] = runtime.workspace.train(tiny_config(epochs=2, seed=3), run_name="crash").version
    Path(ack).write_text(json.dumps({**acknowledged, "steps": steps}))


def playwright_expect(locator: Any) -> Any:
    """Playwright's `expect` (imported on use: modules without a browser never need playwright)."""
    from playwright.sync_api import expect

    return expect(locator)


def served_by(client: httpx.Client, query: bytes) -> tuple[str, list[int]]:
    """The version and the top-5 ids a live server answers a query with."""
    response = client.post("/api/v1/search", params={"k": 5}, files={"file": ("q.png", query)})
    assert response.status_code == 200, response.text
    body = response.json()
    return body["model"]["version"], [result["id"] for result in body["results"]]


def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Wait until `condition()` holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds  # an upper bound on waiting, not a performance assertion
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)
