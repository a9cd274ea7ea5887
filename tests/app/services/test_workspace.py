"""Nothing committed is lost: corrupt files fall back, killed writers leave the last good state."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from app.cli import main
from app.services.workspace import Workspace
from index.gallery import Gallery
from models.checkpoints import WEIGHTS
from models.data.mnist import MnistSplit
from tests.helpers import encode, serve, tiny_config


@pytest.fixture
def two_models(trained_copy: Path) -> tuple[Path, str, str]:
    """A private copy of the trained workspace with a second model activated after the first."""
    root = trained_copy
    workspace = Workspace(root, "idx")
    first = workspace.active()
    assert first is not None
    second = workspace.train(tiny_config(seed=7, epochs=1))
    workspace.activate(second.version, workspace.build_gallery(second.version))
    return root, first.model_version, second.version


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_gallery_falls_back_to_the_last_good_activation(two_models: tuple[Path, str, str]) -> None:
    root, first, second = two_models
    flip_last_byte(root / "galleries" / f"{second}-train" / "images.npy")
    with serve(root) as client:
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 200 and ready.json()["model"]["version"] == first


def test_corrupt_weights_fall_back_too(two_models: tuple[Path, str, str]) -> None:
    root, first, second = two_models
    flip_last_byte(root / "models" / second / WEIGHTS)
    with serve(root) as client:
        assert client.get("/api/v1/ready").json()["model"]["version"] == first


def test_nothing_loadable_is_not_ready_with_every_reason(two_models: tuple[Path, str, str]) -> None:
    root, first, second = two_models
    for version in (first, second):
        flip_last_byte(root / "models" / version / WEIGHTS)
    with serve(root) as client:
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 503
        assert first in ready.json()["message"] and second in ready.json()["message"]


def test_serve_refuses_a_gallery_of_another_model(
    two_models: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, first, second = two_models
    workspace = Workspace(root, "idx")
    workspace.activate(first, root / "galleries" / f"{second}-train")
    code = main(["--data-dir", str(root), "serve"])
    assert code == 2
    message = capsys.readouterr().err
    assert "refusing to start" in message and f"aeseek index build --model {first}" in message


@pytest.mark.slow
def test_killing_an_index_build_never_leaves_a_half_written_gallery(
    two_models: tuple[Path, str, str], full_mnist: dict[str, MnistSplit]
) -> None:
    root, first, _ = two_models
    gallery_dir = root / "galleries" / f"{first}-train"
    before = {name: (gallery_dir / name).read_bytes() for name in ("index.faiss", "items.jsonl", "manifest.json")}
    env = {**os.environ, "AESEEK_MNIST_SOURCE": "idx", "AESEEK_DATA_DIR": str(root)}
    command = [sys.executable, "-m", "app.cli", "index", "build", "--model", first, "--no-activate"]
    # Kill at different moments: while importing, embedding, writing. Each time the gallery
    # on disk must be the complete old one or a complete new one (it is rebuilt identically).
    for delay in (0.5, 1.5, 2.5, 3.0, 3.5, 4.0):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        gallery = Gallery.load(gallery_dir, expected_model_version=first)  # checksums verified
        assert len(gallery) == 600
        for name, data in before.items():
            if name != "manifest.json":  # the manifest's creation time changes on a rebuild
                assert (gallery_dir / name).read_bytes() == data
    Workspace(root, "idx").sweep_temporary_files(older_than_s=0)
    assert not list(root.rglob(".*.tmp"))
    with serve(root) as client:
        png = encode(Image.fromarray(full_mnist["train"].images[3]))
        body = client.post("/api/v1/search", files={"file": ("q.png", png)}).json()
        assert body["results"][0]["id"] == 3
