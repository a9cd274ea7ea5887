"""Training across processes of this machine: torchrun started by `train_model`, on a few hundred images."""

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from app.services import distributed
from app.services.distributed import train_model
from app.services.workspace import Workspace
from models.errors import CheckpointError
from models.progress import Progress, TrainingStopped
from tests.helpers import tiny_config


def test_one_process_is_the_workspace_training_unchanged(workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = Workspace(workspace_dir, "idx")
    config = tiny_config(epochs=1)
    alone = workspace.train(config)

    def no_processes(*args: object, **kwargs: object) -> None:
        raise AssertionError("nproc 1 must not start processes")

    monkeypatch.setattr(distributed.subprocess, "Popen", no_processes)
    record = train_model(workspace, config, 1)
    assert record.version == alone.version and record.history["epoch_losses"] == alone.history["epoch_losses"]


@pytest.mark.slow
def test_two_processes_save_one_model_like_one_process_and_resume_a_stopped_run(workspace_dir: Path) -> None:
    workspace = Workspace(workspace_dir, "idx")
    config = tiny_config(epochs=2)  # 600 images, global batch 64: 10 steps of 32 a rank per epoch, as alone
    seen: list[Progress] = []
    whole = train_model(workspace, config, 2, run_name="whole", on_progress=seen.append)

    assert [path.name for path in workspace.models_dir.iterdir()] == [whole.version]
    alone = workspace.train(tiny_config(epochs=1))  # the same record, history and metrics format
    assert whole.as_dict().keys() == alone.as_dict().keys() and whole.history.keys() == alone.history.keys()
    assert whole.history["images_seen"] == 2 * 600 and len(whole.history["epoch_losses"]) == 2
    assert whole.history["epoch_losses"][1] < whole.history["epoch_losses"][0]
    # Rank 0's progress came back as if this process had trained.
    assert [p.step for p in seen] == list(range(1, 21)) and seen[-1].steps_total == 20 and seen[-1].epoch == 2
    state = torch.load(workspace.runs_dir / "whole" / "training_state.pt", weights_only=True)
    assert state["world_size"] == 2 and state["epochs_done"] == 2

    # Stopped after its first epoch, then resumed: the same model as the run that never stopped.
    first = train_model(workspace, config, 2, run_name="resumed", max_steps=10)
    assert first.history["stopped_early"] and len(first.history["epoch_losses"]) == 1
    resumed = train_model(workspace, config, 2, run_name="resumed")
    assert resumed.version == whole.version
    assert resumed.history["epoch_losses"] == whole.history["epoch_losses"]

    # Resumed across another number of processes: the ranks' own error, raised here.
    with pytest.raises(CheckpointError, match=r"saved by a run across 2 processes; resume it with 2 \(--nproc 2\)"):
        train_model(workspace, config, 3, run_name="resumed")


@pytest.mark.slow
def test_a_stop_ends_every_rank_and_leaves_the_run_resumable(
    workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[subprocess.Popen[bytes]] = []
    start = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        launched.append(start(*args, **kwargs))
        return launched[-1]

    monkeypatch.setattr(distributed.subprocess, "Popen", recording)
    workspace = Workspace(workspace_dir, "idx")
    seen: list[Progress] = []

    def in_second_epoch() -> bool:
        return bool(seen) and seen[-1].epoch > 1

    with pytest.raises(TrainingStopped):
        train_model(
            workspace, tiny_config(epochs=200), 2, run_name="long", on_progress=seen.append, should_stop=in_second_epoch
        )
    # torchrun and both ranks are gone (their process group is empty), and the first epoch is saved.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and group_alive(launched[0].pid):
        time.sleep(0.05)
    assert not group_alive(launched[0].pid)
    state = torch.load(workspace.runs_dir / "long" / "training_state.pt", weights_only=True)
    assert state["epochs_done"] >= 1 and state["world_size"] == 2
    assert not list(workspace.models_dir.glob("*"))  # stopped: no model saved


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
