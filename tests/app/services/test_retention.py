"""Retention: what aeseek gc deletes, what it keeps, and the disk budget."""

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.services.jobs.store import JobStore
from app.services.retention import collect, size_of
from app.services.workspace import Workspace
from tests.helpers import png_of, serve, tiny_config

DAY = 86400.0


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(item, (then, then), follow_symlinks=False)


def test_gc_deletes_what_nothing_uses_and_keeps_what_serves(
    trained_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = Workspace(trained_copy, "idx")
    active = workspace.active()
    assert active is not None
    served = trained_copy / active.gallery_dir
    partial = workspace.galleries_dir / f"{active.model_version}-train-deadbeef"  # killed before its manifest
    shutil.copytree(served, partial)
    (partial / "manifest.json").unlink()
    jobs = JobStore(trained_copy / "jobs")
    old = jobs.create("conv", {})
    old.state, old.finished = "succeeded", time.time() - 40 * DAY
    jobs.save(old)
    recent = jobs.create("conv", {})
    (workspace.runs_dir / f"job-{old.id}").mkdir(parents=True)
    (workspace.runs_dir / f"job-{old.id}" / "training_state.pt").write_bytes(b"x" * 1000)
    age(partial, DAY)

    dry = collect(workspace, retention_s=30 * DAY, dry_run=True)
    assert {removal.path for removal in dry} == {partial, jobs.path(old.id), workspace.runs_dir / f"job-{old.id}"}
    assert partial.exists()  # a dry run deletes nothing
    assert main(["--data-dir", str(trained_copy), "gc"]) == 0
    assert "removed 3 items" in capsys.readouterr().err
    assert not partial.exists() and jobs.get(old.id) is None and jobs.get(recent.id) is not None
    assert served.exists()
    with serve(trained_copy) as client:
        assert client.get("/api/v1/ready").status_code == 200


def test_delete_a_model_but_never_the_active_one(trained_copy: Path) -> None:
    workspace = Workspace(trained_copy, "idx")
    active = workspace.active()
    assert active is not None
    other = workspace.train(tiny_config(seed=5, epochs=1))
    workspace.activate(other.version, workspace.build_gallery(other.version))
    workspace.activate(active.model_version, trained_copy / active.gallery_dir)  # the other is now a fallback
    key = "models-test-key-01234"
    with serve(trained_copy, api_keys=key, headers={"Authorization": f"Bearer {key}"}) as client:
        refused = client.delete(f"/api/v1/models/{active.model_version}")
        assert refused.status_code == 409 and "answers searches" in refused.json()["message"]
        assert client.delete(f"/api/v1/models/{other.version}").status_code == 204
        assert client.get(f"/api/v1/models/{other.version}").status_code == 404
        assert client.delete(f"/api/v1/models/{other.version}").status_code == 404
    assert not list(workspace.galleries_dir.glob(f"{other.version}-*"))
    pointers = json.loads(workspace.active_file.read_text())
    assert other.version not in json.dumps(pointers)


def test_a_write_past_the_disk_budget_is_refused(trained_copy: Path, train_images: np.ndarray) -> None:
    budget = size_of(trained_copy) + 1000  # less than a new copy of the gallery
    key = {"Authorization": "Bearer budget-test-key-01234"}
    with serve(trained_copy, api_keys="budget-test-key-01234", headers=key, disk_budget_bytes=budget) as client:
        files = [("files", ("a.png", png_of(train_images[0])))]
        response = client.post("/api/v1/gallery", files=files, data={"labels": "1"})
        assert response.status_code == 507 and response.json()["code"] == "disk_budget_exceeded", response.text
        assert "AESEEK_DISK_BUDGET_BYTES" in response.json()["message"]
        assert client.get("/api/v1/ready").json()["gallery_size"] == 600
