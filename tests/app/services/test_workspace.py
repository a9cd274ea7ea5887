"""Nothing committed is lost: corrupt files fall back, killed writers leave the last good state."""

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from app.services.runtime import Runtime
from app.services.workspace import Workspace
from index.gallery import Gallery
from models.checkpoints import WEIGHTS, load_model
from models.data.mnist import MnistSplit
from tests.helpers import encode, png_of, run_until_killed, serve, serving_settings, tiny_config


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


def gallery_of(root: Path, version: str) -> Path:
    """The directory of the newest gallery built by a model."""
    directory = Workspace(root, "idx").find_gallery(version, "train")
    assert directory is not None
    return directory


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_gallery_falls_back_to_the_last_good_activation(two_models: tuple[Path, str, str]) -> None:
    root, first, second = two_models
    flip_last_byte(gallery_of(root, second) / "images.npy")
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
    workspace.activate(first, gallery_of(root, second))
    code = main(["--data-dir", str(root), "serve"])
    assert code == 2
    message = capsys.readouterr().err
    assert "refusing to start" in message and f"aeseek index build --model {first}" in message


@pytest.fixture(scope="module")
def crash_base(trained_dir: Path, tmp_path_factory: pytest.TempPathFactory, full_mnist: dict[str, MnistSplit]) -> Path:
    """A served workspace with a second, inactive model and three query images to add."""
    root = tmp_path_factory.mktemp("crash") / "base"
    shutil.copytree(trained_dir, root, symlinks=True)
    Workspace(root, "idx").train(tiny_config(seed=7, epochs=1))
    np.save(root / "query-images.npy", full_mnist["test"].images[:3])
    return root


def served(root: Path) -> tuple[str, list[int], int]:
    """What a restarted server answers with: model version, gallery ids, the next id it would hand out."""
    assert Workspace(root, "idx").active_mismatch() is None  # `aeseek serve` would start
    runtime = Runtime(serving_settings(root, batching=False))
    runtime.load_active()
    assert runtime.not_ready_reason is None, runtime.not_ready_reason
    snapshot = runtime.require_search().snapshot
    return snapshot.record.version, [item.id for item in snapshot.gallery.items], snapshot.gallery.manifest.next_id


def run_change(root: Path, operation: str, argument: str, kill_at: int) -> dict[str, Any] | None:
    context = multiprocessing.get_context("forkserver")  # forked from a clean server: cheap, no inherited threads
    context.set_forkserver_preload(["tests.helpers"])
    ack = root / "ack.json"
    process = context.Process(target=run_until_killed, args=(str(root), operation, argument, kill_at, str(ack)))
    process.start()
    process.join(timeout=300)
    if kill_at:
        assert process.exitcode == -signal.SIGKILL, process.exitcode
        return None
    assert process.exitcode == 0
    acknowledged: dict[str, Any] = json.loads(ack.read_text())
    ack.unlink()
    return acknowledged


@pytest.mark.slow
@pytest.mark.parametrize("operation", ["add", "delete", "activate", "train"])
def test_a_kill_at_any_durable_step_leaves_the_old_state_or_the_new_one(
    crash_base: Path, tmp_path: Path, operation: str
) -> None:
    second = next(p.name for p in (crash_base / "models").iterdir() if p.name != served(crash_base)[0])
    argument = {"delete": "5", "activate": second}.get(operation, "")
    before = served(crash_base)
    complete = tmp_path / "complete"
    shutil.copytree(crash_base, complete, symlinks=True)
    acknowledged = run_change(complete, operation, argument, kill_at=0)
    assert acknowledged is not None
    after = served(complete)
    expected_after = {
        "add": lambda: (before[0], [*before[1], *acknowledged["ids"]]),
        "delete": lambda: (before[0], [i for i in before[1] if i != 5]),
        "activate": lambda: (second, before[1]),
        "train": lambda: before[:2],
    }[operation]()
    assert after[:2] == expected_after
    # Kill the change at each of its durable steps in turn; restart; it must serve the state
    # from before the change or the one after it, never a mix, and never hand out an old id.
    assert acknowledged["steps"] >= 6  # fsyncs, renames and removals: the points a kill is tried at
    for step in range(1, acknowledged["steps"] + 1):
        root = tmp_path / f"killed-{step}"
        shutil.copytree(crash_base, root, symlinks=True)
        run_change(root, operation, argument, kill_at=step)
        state = served(root)
        assert state[:2] in (before[:2], after[:2]), f"killed at step {step}: {state[:2]}"
        assert state[2] >= (after if state[:2] == after[:2] else before)[2]
        for directory in (root / "models").iterdir():  # every listed model loads (a killed save is not listed)
            if (directory / "model.json").is_file():
                load_model(directory)
        shutil.rmtree(root)


def test_ids_are_never_reused_across_deletes_restarts_and_activations(crash_base: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(crash_base, root, symlinks=True)
    version, ids, _ = served(root)
    second = next(p.name for p in (root / "models").iterdir() if p.name != version)
    runtime = Runtime(serving_settings(root, batching=False))
    runtime.load_active()
    image = png_of(np.load(root / "query-images.npy")[0])
    [newest] = runtime.add_to_gallery([image], [7], [None])
    runtime.remove_from_gallery(newest.id)  # the newest item goes: its id must not come back
    runtime.activate(second)  # a new model embeds the gallery again (it started ids at 0 before)
    restarted = Runtime(serving_settings(root, batching=False))
    restarted.load_active()
    [added] = restarted.add_to_gallery([image], [7], [None])
    assert added.id == newest.id + 1 and max(ids) < newest.id


@pytest.mark.slow
def test_killing_an_index_build_never_leaves_a_half_written_gallery(
    two_models: tuple[Path, str, str], full_mnist: dict[str, MnistSplit]
) -> None:
    root, first, _ = two_models
    gallery_dir = gallery_of(root, first)
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
