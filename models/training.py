"""The training loop every variant shares: in-memory tensors, one-cycle Adam, resumable."""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from models.base import Autoencoder
from models.errors import AeseekError, CheckpointError
from models.storage import atomic_write_with


@dataclass
class Progress:
    """Where a training run stands; passed to the progress callback after every step."""

    epoch: int
    epochs: int
    step: int
    steps_total: int
    loss: float
    images_per_s: float
    eta_s: float

    @property
    def fraction(self) -> float:
        """Share of all steps done, in [0, 1]."""
        return self.step / self.steps_total if self.steps_total else 1.0


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced: the loss per epoch and timing."""

    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    images_seen: int = 0
    stopped_early: bool = False

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form."""
        return asdict(self)


class TrainingDiverged(AeseekError):
    """The loss became NaN or infinite."""


class TrainingStopped(AeseekError):
    """The caller asked the run to stop (a cancelled job)."""


ProgressCallback = Callable[[Progress], None]


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
) -> TrainResult:
    """Train `model` on uint8 images (N, 28, 28) with its config's training settings.

    With `state_dir`, the full state (weights, optimizer, schedule, epoch, losses) is
    saved there after every epoch and an existing state is resumed from. `max_steps`
    limits the run to a few steps (the CLI's --dry-run).
    """
    config = model.config.training
    steps_per_epoch = math.ceil(len(images) / config.batch_size)
    steps_total = steps_per_epoch * config.epochs
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps_total, pct_start=0.15)
    result = TrainResult()
    first_epoch = 0
    if state_dir is not None and _state_path(state_dir).is_file():
        first_epoch, result = _load_state(state_dir, model, optimizer, schedule)

    started = time.perf_counter()
    step = first_epoch * steps_per_epoch
    seen_this_run = 0
    model.train()
    for epoch in range(first_epoch, config.epochs):
        # One generator per epoch, seeded from (seed, epoch): a resumed run shuffles the same way.
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        running, batches = 0.0, 0
        for start in range(0, len(images), config.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingStopped("training was stopped on request")
            batch = model.prepare(images[order[start : start + config.batch_size]])
            losses = model.loss(batch)
            loss = losses["loss"]
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            batches += 1
            running += loss.item()
            seen_this_run += batch.shape[0]
            if on_progress is not None:
                elapsed = time.perf_counter() - started
                rate = seen_this_run / elapsed if elapsed > 0 else 0.0
                steps_left = steps_total - step
                eta = steps_left * config.batch_size / rate if rate > 0 else float("nan")
                on_progress(Progress(epoch + 1, config.epochs, step, steps_total, running / batches, rate, eta))
            if max_steps is not None and step >= max_steps:
                result.stopped_early = True
                break
        result.epoch_losses.append(running / max(batches, 1))
        if state_dir is not None:
            _save_state(state_dir, model, optimizer, schedule, epoch + 1, result)
        if result.stopped_early:
            break
    result.seconds += time.perf_counter() - started
    result.images_seen = seen_this_run
    model.eval()
    return result


def _save_state(
    directory: Path,
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    epochs_done: int,
    result: TrainResult,
) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "epochs_done": epochs_done,
        "epoch_losses": list(result.epoch_losses),
        "seconds": result.seconds,
    }
    atomic_write_with(_state_path(directory), lambda temp: torch.save(state, temp))


def _load_state(
    directory: Path,
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, TrainResult]:
    # weights_only=True: tensors, numbers, lists and dicts only, never arbitrary pickled objects.
    path = _state_path(directory)
    try:
        state = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(
            f"{path} is not a valid training state (only tensors and plain values are loaded): {error}"
        ) from error
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    result = TrainResult(epoch_losses=list(state["epoch_losses"]), seconds=float(state["seconds"]))
    return int(state["epochs_done"]), result
