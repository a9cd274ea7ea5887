"""The inner optimisation loop, shared by end-to-end training and layer-wise pretraining."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.errors import AeseekError


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
    phase: str = "train"

    @property
    def fraction(self) -> float:
        """Share of this phase's steps done, in [0, 1]."""
        return self.step / self.steps_total if self.steps_total else 1.0


ProgressCallback = Callable[[Progress], None]


class TrainingDiverged(AeseekError):
    """The loss became NaN or infinite."""


class TrainingStopped(AeseekError):
    """The caller asked the run to stop (a cancelled job)."""


@dataclass
class Hooks:
    """What a loop reports to and asks of its caller."""

    on_progress: ProgressCallback | None = None
    should_stop: Callable[[], bool] | None = None
    max_steps: int | None = None

    def check_stop(self) -> None:
        """Raise TrainingStopped when the caller asked to stop."""
        if self.should_stop is not None and self.should_stop():
            raise TrainingStopped("training was stopped on request")


def epoch_order(count: int, seed: int, epoch: int) -> Tensor:
    """The shuffle of one epoch, from (seed, epoch) alone: a resumed run shuffles the same way."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def check_finite(loss: Tensor, where: str) -> None:
    """Raise TrainingDiverged on a NaN or infinite loss."""
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"loss became {loss.item()} at {where}; lower the learning rate")


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
    """Adam over `inputs` for a few epochs (pretraining phases); returns the loss per epoch."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    steps_per_epoch = math.ceil(len(inputs) / batch_size)
    steps_total = steps_per_epoch * epochs
    started, step, seen = time.perf_counter(), 0, 0
    losses = []
    for epoch in range(epochs):
        order = epoch_order(len(inputs), seed, epoch)
        running = 0.0
        batches = 0
        for start in range(0, len(inputs), batch_size):
            hooks.check_stop()
            batch = inputs[order[start : start + batch_size]]
            loss = loss_of_batch(batch)
            check_finite(loss, f"{phase}, epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step, batches, seen = step + 1, batches + 1, seen + len(batch)
            running += loss.item()
            if hooks.on_progress is not None:
                rate = seen / max(time.perf_counter() - started, 1e-9)
                eta = (steps_total - step) * batch_size / rate
                hooks.on_progress(Progress(epoch + 1, epochs, step, steps_total, running / batches, rate, eta, phase))
            if hooks.max_steps is not None and step >= hooks.max_steps:
                break
        losses.append(running / max(batches, 1))
        if hooks.max_steps is not None and step >= hooks.max_steps:
            break
    return losses
