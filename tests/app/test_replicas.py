"""Stateless API replicas: two `aeseek serve` processes on two ports sharing one Milvus server and one model store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.services.workspace import Workspace
from tests.helpers import free_port, png_of, served_by, tiny_config, until

KEY = "replicas-test-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@contextmanager
def replica(root: Path, uri: str, prefix: str) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    """One `aeseek serve` process over the shared data directory and Milvus; its client once it is live."""
    port = free_port()
    env = {**os.environ, "AESEEK_DATA_DIR": str(root), "AESEEK_BOOTSTRAP": "false", "AESEEK_MNIST_SOURCE": "idx",
           "AESEEK_JOBS_ENABLED": "false", "AESEEK_API_KEYS": KEY, "AESEEK_LOG_LEVEL": "warning",
           "AESEEK_INDEX_BACKEND": "milvus", "AESEEK_MILVUS_URI": uri, "AESEEK_MILVUS_PREFIX": prefix}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            until(lambda: _live(client), seconds=120)
            yield process, client
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def _live(client: httpx.Client) -> bool:
    try:
        return client.get("/api/v1/health").status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.slow
def test_replicas_share_activations_and_gallery_and_survive_each_other(
    trained_copy: Path, train_images: np.ndarray, milvus_server: str, milvus_prefix: str
) -> None:
    workspace = Workspace(trained_copy, "idx")
    first = workspace.active().model_version  # type: ignore[union-attr]
    second = workspace.train(tiny_config(seed=7, epochs=1)).version
    query = png_of(train_images[4])
    with (
        replica(trained_copy, milvus_server, milvus_prefix) as (process_a, a),
        replica(trained_copy, milvus_server, milvus_prefix) as (_, b),
    ):
        assert b.get("/api/v1/ready").status_code == 503  # nothing active in this Milvus yet
        assert a.post(f"/api/v1/models/{first}/activate", headers=AUTH).status_code == 200
        until(lambda: b.get("/api/v1/ready").status_code == 200)
        before = served_by(b, query)
        assert before[0] == first
        answers = []
        assert a.post(f"/api/v1/models/{second}/activate", headers=AUTH).status_code == 200

        def b_serves_second() -> bool:
            answers.append(served_by(b, query))
            return answers[-1][0] == second

        until(b_serves_second)  # replica B follows the alias within a bounded time
        after = served_by(b, query)
        # No answer mixed versions: each equals what the version it names answers.
        assert all(found == {first: before, second: after}[found[0]] for found in answers)
        added = a.post(
            "/api/v1/gallery", headers=AUTH, files={"files": ("a.png", png_of(train_images[9]))}, data={"labels": "4"}
        )
        assert added.status_code == 201, added.text
        item = added.json()["data"][0]["id"]
        # Added through A, found through B once Milvus's time tick has passed (Session consistency).
        until(lambda: b.get(f"/api/v1/gallery/{item}").status_code == 200)
        assert b.get(f"/api/v1/gallery/{item}").json()["label"] == 4
        assert item in served_by(b, png_of(train_images[9]))[1]
        process_a.send_signal(signal.SIGKILL)
        process_a.wait(timeout=30)
        assert served_by(b, query)[0] == second  # B serves on without A
        assert b.get("/api/v1/ready").json()["gallery_size"] == len(train_images[:600]) + 1
