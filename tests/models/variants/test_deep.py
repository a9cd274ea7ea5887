"""The deep autoencoder: RBMs pretrained with CD-k, then unrolled into the encoder and decoder."""

import torch

from models.data.mnist import MnistSplit
from models.progress import Hooks
from models.registry import build_model, config_from_dict
from models.variants.stacked import linear_layers


def test_deep_autoencoder_is_unrolled_from_its_rbms(full_mnist: dict[str, MnistSplit]) -> None:
    model = build_model(
        config_from_dict(
            {"variant": "deep", "hidden": [32], "code_dim": 4, "rbm_epochs": 1, "training": {"batch_size": 64}}
        )
    )
    images = torch.from_numpy(full_mnist["train"].images[:128].copy())
    losses = model.pretrain(images, Hooks())
    assert "RBM 1/2 (784-32)" in losses and "RBM 2/2 (32-4)" in losses
    encoders, decoders = linear_layers(model.encoder), linear_layers(model.decoder)
    # The decoder mirrors the encoder: transposed weights, in reverse order.
    assert torch.equal(decoders[-1].weight, encoders[0].weight.t())
    assert torch.equal(decoders[0].weight, encoders[1].weight.t())
