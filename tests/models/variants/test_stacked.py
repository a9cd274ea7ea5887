"""The stacked autoencoder: greedy layer-wise pretraining, and fine-tuning only when asked."""

import torch

from models.data.mnist import MnistSplit
from models.progress import Hooks, Progress
from models.registry import build_model, config_from_dict
from models.training.trainer import train
from models.variants.stacked import StackedAutoencoder, linear_layers


def test_stacked_layers_stay_frozen_while_a_later_one_trains(full_mnist: dict[str, MnistSplit]) -> None:
    model = build_model(
        config_from_dict(
            {"variant": "stacked", "hidden": [32, 16], "code_dim": 8, "layer_epochs": 2, "training": {"batch_size": 64}}
        )
    )
    assert isinstance(model, StackedAutoencoder)
    first = linear_layers(model.encoder)[0]
    snapshots: dict[str, torch.Tensor] = {}

    def watch(progress: Progress) -> None:
        snapshots.setdefault(progress.phase, first.weight.detach().clone())
        snapshots["last"] = first.weight.detach().clone()

    images = torch.from_numpy(full_mnist["train"].images[:256].copy())
    losses = model.pretrain(images, Hooks(on_progress=watch))
    assert list(losses) == ["layer 1/3", "layer 2/3", "layer 3/3"]
    # Layer 1 changed while it trained, then stayed exactly as it was while layers 2 and 3 trained.
    assert not torch.equal(snapshots["layer 1/3"], snapshots["layer 2/3"])
    assert torch.equal(snapshots["layer 2/3"], snapshots["last"])


def test_stacked_without_fine_tuning_skips_end_to_end_training(full_mnist: dict[str, MnistSplit]) -> None:
    config = {"variant": "stacked", "hidden": [16], "code_dim": 4, "layer_epochs": 1, "fine_tune": False}
    model = build_model(config_from_dict({**config, "training": {"epochs": 3, "batch_size": 64}}))
    phases: list[str] = []
    result = train(
        model, torch.from_numpy(full_mnist["train"].images[:128].copy()), on_progress=lambda p: phases.append(p.phase)
    )
    # Only the greedy layers trained: no end-to-end step ran, no end-to-end epoch was recorded.
    assert set(phases) == {"layer 1/2", "layer 2/2"} and "train" not in phases
    assert result.epoch_losses == [] and list(result.pretraining) == ["layer 1/2", "layer 2/2"]
