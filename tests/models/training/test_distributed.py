"""Training across processes: each rank's share of an epoch, and two real ranks over gloo."""

import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing
from torch.utils.data import DistributedSampler

from models.data.mnist import MnistSplit
from models.registry import build_model
from models.training.distributed import Shard, process_group
from models.training.trainer import train
from tests.helpers import tiny_config


@pytest.mark.parametrize(("count", "world_size"), [(600, 2), (601, 2), (7, 3), (2, 4), (10, 1)])
def test_each_rank_takes_what_a_distributed_sampler_would_give_it(count: int, world_size: int) -> None:
    order = torch.randperm(count, generator=torch.Generator().manual_seed(1))
    shares = [Shard(rank, world_size).take(order) for rank in range(world_size)]
    for rank, share in enumerate(shares):
        dataset: list[int] = list(range(count))
        sampler = DistributedSampler[int](dataset, num_replicas=world_size, rank=rank, shuffle=False)  # type: ignore[arg-type]
        assert share.tolist() == [int(order[index]) for index in sampler]
    # Every image is in some share; every rank takes as many and so steps as many times.
    assert set(torch.cat(shares).tolist()) == set(range(count))
    assert {len(share) for share in shares} == {math.ceil(count / world_size)}
    shard = Shard(0, world_size)
    assert math.ceil(len(shares[0]) / shard.batch_size(64)) == shard.steps_per_epoch(count, 64)


def test_the_global_batch_is_split_so_an_epoch_has_the_steps_of_one_process() -> None:
    assert Shard(0, 2).batch_size(128) == 64
    assert Shard(1, 2).steps_per_epoch(60_000, 128) == Shard().steps_per_epoch(60_000, 128) == 469
    assert Shard().take(torch.arange(5)).tolist() == [0, 1, 2, 3, 4]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def train_rank(rank: int, world_size: int, port: int, images: torch.Tensor, out: Path) -> None:
    """One rank, joined as torchrun would join it (environment variables), training a tiny model."""
    environment = {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": world_size, "LOCAL_WORLD_SIZE": world_size}
    os.environ.update({key: str(value) for key, value in environment.items()})
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    model = build_model(tiny_config(epochs=2, batch_size=64))
    if rank == 1:  # start elsewhere: the ranks agree only if rank 0's weights reach the others
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter))
    with process_group() as shard:
        result = train(model, images, shard=shard)
    torch.save({"parameters": dict(model.named_parameters()), "result": result.as_dict()}, out / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_ranks_end_with_the_same_weights_and_the_loss_falls(
    full_mnist: dict[str, MnistSplit], tmp_path: Path
) -> None:
    images = torch.from_numpy(full_mnist["train"].images[:600].copy())
    torch.multiprocessing.spawn(train_rank, args=(2, free_port(), images, tmp_path), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(2)]
    first, second = (rank["parameters"] for rank in ranks)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    # Each epoch's loss is the mean over both ranks (the same on each), and it falls.
    losses = [rank["result"]["epoch_losses"] for rank in ranks]
    assert losses[0] == losses[1] and len(losses[0]) == 2 and losses[0][1] < 0.8 * losses[0][0]
    # 600 images: 300 a rank and epoch, counted over both ranks.
    assert ranks[0]["result"]["images_seen"] == 2 * 600
