"""Training across processes: which share of each epoch a process takes, and what the processes exchange.

One process per rank, started by torchrun (or `aeseek train --nproc N`, which runs torchrun): each
holds the whole training tensor and steps through its own share of every epoch's shuffle, as
torch's DistributedSampler shares a dataset; DistributedDataParallel averages the gradients, so
every rank holds the same weights after every step. The global batch is the config's
`batch_size`, split evenly over the ranks (rounded up where it does not divide), so the learning
rate and the one-cycle schedule are those of one process, over as many steps an epoch (exactly as
many for the 60,000 images and batch 128 on 2, 4 or 8 processes).
"""

from __future__ import annotations

import gc
import json
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

# Ranks other than 0 wait in a collective while rank 0 pretrains (stacked, deep) or writes files:
# far longer than gloo's default 30 minutes must not count as a hung peer.
GROUP_TIMEOUT = timedelta(hours=6)


@dataclass(frozen=True)
class Shard:
    """This process's place among the ranks of one training run; the default is one process alone."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and reports progress (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there are other ranks to exchange with."""
        return self.world_size > 1

    def batch_size(self, global_batch: int) -> int:
        """Images per step on this rank: the global batch split over the ranks, rounded up."""
        return math.ceil(global_batch / self.world_size)

    def steps_per_epoch(self, count: int, global_batch: int) -> int:
        """Steps in one epoch over `count` images; the same on every rank."""
        return math.ceil(math.ceil(count / self.world_size) / self.batch_size(global_batch))

    def take(self, order: Tensor) -> Tensor:
        """This rank's share of an epoch's order, as DistributedSampler takes it: padded by wrapping
        round to a multiple of the world size, then every world_size-th index from `rank`."""
        if not self.distributed:
            return order
        total = math.ceil(len(order) / self.world_size) * self.world_size
        padded = order.repeat(math.ceil(total / len(order)))[:total]
        return padded[self.rank : total : self.world_size]

    def mean(self, value: float) -> float:
        """The mean of `value` over the ranks (every rank gets it)."""
        if not self.distributed:
            return value
        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return float(total.item()) / self.world_size

    def share_bytes(self, data: bytes | None) -> bytes | None:
        """Rank 0's `data` on every rank (the others' argument is ignored); a collective, so also a barrier."""
        if not self.distributed:
            return data
        size = torch.tensor([-1 if data is None else len(data)], dtype=torch.int64, device=self.device)
        dist.broadcast(size, src=0)
        length = int(size.item())
        if length < 0:
            return None
        buffer = torch.empty(length, dtype=torch.uint8, device=self.device)
        if self.is_main and data is not None:
            buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        dist.broadcast(buffer, src=0)
        return buffer.cpu().numpy().tobytes()

    def share_json(self, value: Any) -> Any:
        """Rank 0's JSON-ready `value` on every rank."""
        shared = self.share_bytes(json.dumps(value).encode() if self.is_main else b"")
        return json.loads(shared or b"null")


SINGLE = Shard()


def launched_rank() -> int | None:
    """This process's rank when torchrun started it as one of several, else None."""
    return int(os.environ["RANK"]) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None


@contextmanager
def process_group() -> Iterator[Shard]:
    """Join the ranks torchrun described in the environment (RANK, WORLD_SIZE, MASTER_ADDR, ...).

    NCCL on one GPU per local rank when the machine has enough of them, else gloo on the CPU.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    on_gpu = torch.cuda.is_available() and torch.cuda.device_count() >= local_world
    device = torch.device("cuda", local_rank) if on_gpu else torch.device("cpu")
    if on_gpu:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if on_gpu else "gloo", timeout=GROUP_TIMEOUT)
    try:
        yield Shard(dist.get_rank(), dist.get_world_size(), device)
    finally:
        # DistributedDataParallel's reducer sits in reference cycles: freed after its process group, at
        # exit, its threads abort the process ("terminate called without an active exception").
        gc.collect()
        dist.destroy_process_group()


class _Objective(nn.Module):
    """A model's training loss as a module's forward: DistributedDataParallel syncs gradients of forwards."""

    def __init__(self, model: nn.Module, loss_of_batch: Callable[[Tensor], Tensor], device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.loss_of_batch = loss_of_batch
        self.device = device

    def forward(self, batch: Tensor) -> Tensor:
        return self.loss_of_batch(batch.to(self.device))


def data_parallel(
    model: nn.Module, loss_of_batch: Callable[[Tensor], Tensor], shard: Shard
) -> Callable[[Tensor], Tensor]:
    """`loss_of_batch` whose backward averages gradients over the ranks; wrapping copies rank 0's
    weights and buffers to every rank, so ranks that skipped pretraining start from rank 0's."""
    objective = _Objective(model, loss_of_batch, shard.device)
    device_ids = [shard.device.index] if shard.device.type == "cuda" else None
    return DistributedDataParallel(objective, device_ids=device_ids)
