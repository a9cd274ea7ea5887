"""The one optimisation loop, shared by end-to-end training and layer-wise pretraining."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from models.progress import Hooks, Progress, TrainingDiverged
from models.training.distributed import SINGLE, Shard

EpochEnd = Callable[[int, float], None]


@dataclass
class LoopResult:
    """Mean loss of each epoch run, images seen and whether a step limit cut the run short."""

    epoch_losses: list[float] = field(default_factory=list)
    images_seen: int = 0
    stopped_early: bool = False


def epoch_order(count: int, seed: int, epoch: int) -> Tensor:
    """The shuffle of one epoch, from (seed, epoch) alone: a resumed run shuffles the same way."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def check_finite(loss: Tensor, where: str) -> None:
    """Raise TrainingDiverged on a NaN or infinite loss."""
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"loss became {loss.item()} at {where}; lower the learning rate")


def run_epochs(
    loss_of_batch: Callable[[Tensor], Tensor],
    inputs: Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    phase: str,
    hooks: Hooks,
    first_epoch: int = 0,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    on_epoch_end: EpochEnd | None = None,
    shard: Shard = SINGLE,
) -> LoopResult:
    """Shuffle, step and report over `inputs` from `first_epoch` to `epochs`.

    `loss_of_batch` maps a batch of `inputs` rows to a scalar loss. After every step the
    progress callback gets the running mean loss, the rate and an ETA; `hooks.max_steps`
    ends the run after that many steps of this call; `on_epoch_end(epochs_done, mean_loss)`
    lets the caller save a resumable state. With a `shard` of several ranks, this rank steps through
    its share of each epoch's order (`batch_size` is the global batch), images are counted over all
    ranks and each epoch's mean loss is averaged over them.
    """
    steps_per_epoch = shard.steps_per_epoch(len(inputs), batch_size)
    local_batch = shard.batch_size(batch_size)
    steps_total = steps_per_epoch * epochs
    step = first_epoch * steps_per_epoch
    started, steps_run = time.perf_counter(), 0
    result = LoopResult()
    for epoch in range(first_epoch, epochs):
        order = shard.take(epoch_order(len(inputs), seed, epoch))
        running, batches = 0.0, 0
        for start in range(0, len(order), local_batch):
            hooks.check_stop()
            batch = inputs[order[start : start + local_batch]]
            loss = loss_of_batch(batch)
            check_finite(loss, f"{phase}, epoch {epoch + 1}, step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            step, steps_run, batches = step + 1, steps_run + 1, batches + 1
            result.images_seen += len(batch) * shard.world_size
            running += loss.item()
            if hooks.on_progress is not None:
                rate = result.images_seen / max(time.perf_counter() - started, 1e-9)
                eta = (steps_total - step) * local_batch * shard.world_size / rate
                hooks.on_progress(Progress(epoch + 1, epochs, step, steps_total, running / batches, rate, eta, phase))
            if hooks.max_steps is not None and steps_run >= hooks.max_steps:
                result.stopped_early = True
                break
        result.epoch_losses.append(shard.mean(running / max(batches, 1)))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, result.epoch_losses[-1])
        if result.stopped_early:
            break
    return result


def fit(
    parameters: Iterable[nn.Parameter],
    loss_of_batch: Callable[[Tensor], Tensor],
    inputs: Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    phase: str,
    hooks: Hooks,
) -> list[float]:
    """Adam over `inputs` for a few epochs (a pretraining phase); returns the loss per epoch."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    return run_epochs(
        loss_of_batch, inputs, optimizer, epochs=epochs, batch_size=batch_size, seed=seed, phase=phase, hooks=hooks
    ).epoch_losses
