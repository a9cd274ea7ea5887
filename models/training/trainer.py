"""End-to-end training every variant shares: in-memory tensors, one-cycle Adam, resumable.

Variants that need pretraining (stacked, deep) do it in their `pretrain` hook first; the
state saved after pretraining and after every epoch lets a stopped run resume.

Across processes (a `Shard` of several ranks, see models/training/distributed.py) the same code
runs in every rank: rank 0 alone pretrains, reports progress and writes the state, and reads the
state to resume, which it shares with the others.
"""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.base import Autoencoder
from models.errors import CheckpointError
from models.progress import Hooks, ProgressCallback
from models.storage import atomic_write_with
from models.training.distributed import SINGLE, Shard, data_parallel
from models.training.loop import run_epochs


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced: losses per phase and epoch, and timing."""

    epoch_losses: list[float] = field(default_factory=list)
    pretraining: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    images_seen: int = 0
    stopped_early: bool = False

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form."""
        return asdict(self)


def _state_path(directory: Path) -> Path:
    return directory / "training_state.pt"


def train(
    model: Autoencoder,
    images: Tensor,
    *,
    on_progress: ProgressCallback | None = None,
    state_dir: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_steps: int | None = None,
    shard: Shard = SINGLE,
) -> TrainResult:
    """Train `model` on uint8 images (N, 28, 28) with its config's training settings.

    With `state_dir`, the full state (weights, optimizer, schedule, epoch, losses) is
    saved there after pretraining and after every epoch, and an existing state is resumed
    from. `max_steps` limits each phase to a few steps (the CLI's --dry-run). With a `shard`
    of several ranks, every rank calls this with the same arguments and ends with the same weights.
    """
    # Weight decay drives the weights of never-lit border pixels towards zero until they are
    # subnormal floats, which the CPU handles many times slower (the l2 variant trained 10x
    # slower before this). Flushing them to zero while training changes nothing measurable in
    # the model, and its saved weights hold zeros instead. The flag is process-wide: restored after.
    torch.set_flush_denormal(True)
    try:
        return _train(model, images, on_progress, state_dir, should_stop, max_steps, shard)
    finally:
        torch.set_flush_denormal(False)


def _train(
    model: Autoencoder,
    images: Tensor,
    on_progress: ProgressCallback | None,
    state_dir: Path | None,
    should_stop: Callable[[], bool] | None,
    max_steps: int | None,
    shard: Shard,
) -> TrainResult:
    config = model.config.training
    hooks = Hooks(on_progress, should_stop, max_steps)
    steps_per_epoch = shard.steps_per_epoch(len(images), config.batch_size)
    epochs = config.epochs if model.trains_end_to_end else 0
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=max(steps_per_epoch * epochs, 1), pct_start=0.15
    )
    result = TrainResult()
    first_epoch = -1  # -1: pretraining not done yet
    saved = _read_state(state_dir, shard) if state_dir is not None else None
    if state_dir is not None and saved is not None:
        first_epoch, result = _load_state(state_dir, saved, shard.world_size, model, optimizer, schedule)

    def save(epochs_done: int, _: float = 0.0) -> None:
        if state_dir is not None and shard.is_main:
            _save_state(state_dir, model, optimizer, schedule, epochs_done, result, shard.world_size)

    started = time.perf_counter()
    if first_epoch < 0:
        if shard.is_main:  # the others wait in data_parallel below, which copies rank 0's weights to them
            result.pretraining = model.pretrain(images, hooks)
        first_epoch = 0
        save(0)

    def record_epoch(epochs_done: int, mean_loss: float) -> None:
        result.epoch_losses.append(mean_loss)
        save(epochs_done)

    model.train()

    def loss_of_batch(batch: Tensor) -> Tensor:
        return model.loss(model.prepare(batch))["loss"]

    if shard.distributed:
        if shard.device.type != "cpu":
            model.to(shard.device)
            optimizer.load_state_dict(optimizer.state_dict())  # casts a resumed state to the weights' device
        torch.manual_seed(config.seed + shard.rank)  # each rank its own noise (denoising, VAE sampling)
    run = run_epochs(
        data_parallel(model, loss_of_batch, shard) if shard.distributed else loss_of_batch,
        images,
        optimizer,
        epochs=epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        phase="train",
        hooks=hooks,
        first_epoch=first_epoch,
        schedule=schedule,
        on_epoch_end=record_epoch,
        shard=shard,
    )
    result.stopped_early = run.stopped_early
    result.seconds += time.perf_counter() - started
    result.images_seen = run.images_seen
    if shard.distributed:
        model.cpu()
    model.eval()
    return result


def _save_state(
    directory: Path,
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    epochs_done: int,
    result: TrainResult,
    world_size: int,
) -> None:
    state: dict[str, Any] = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "epochs_done": epochs_done,
        "epoch_losses": list(result.epoch_losses),
        "pretraining": {name: list(values) for name, values in result.pretraining.items()},
        "seconds": result.seconds,
    }
    if world_size > 1:  # a resume must shard (and so schedule) the same way
        state["world_size"] = world_size
    atomic_write_with(_state_path(directory), lambda temp: torch.save(state, temp))


def _read_state(directory: Path, shard: Shard) -> bytes | None:
    """The saved state's bytes as rank 0 reads them, on every rank; None when there is none yet."""
    path = _state_path(directory)
    try:
        data = path.read_bytes() if shard.is_main and path.is_file() else None
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read: {error}") from error
    return shard.share_bytes(data)


def _load_state(
    directory: Path,
    data: bytes,
    world_size: int,
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, TrainResult]:
    path = _state_path(directory)
    try:
        # weights_only=True: tensors, numbers, lists and dicts only, never arbitrary pickled objects.
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(
            f"{path} is not a valid training state (only tensors and plain values are loaded): {error}"
        ) from error
    saved_world = int(state.get("world_size", 1))
    if saved_world != world_size:
        raise CheckpointError(
            f"{path} was saved by a run across {saved_world} processes; resume it with {saved_world} "
            f"(--nproc {saved_world}), not {world_size}"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    result = TrainResult(
        epoch_losses=list(state["epoch_losses"]),
        pretraining={name: list(values) for name, values in state.get("pretraining", {}).items()},
        seconds=float(state["seconds"]),
    )
    return int(state["epochs_done"]), result
