"""Deep autoencoder (4.3.4): stacked RBMs pretrained with CD-k, unrolled, fine-tuned.

As in Hinton & Salakhutdinov (2006): 784-1000-500-250-code RBMs are trained greedily (each
on the hidden probabilities of the one below; the top one has linear Gaussian hidden units),
then unrolled into an encoder (W_i, hidden biases) and a mirrored decoder (W_i transposed,
visible biases), and the whole deep autoencoder is fine-tuned with backpropagation on the
cross-entropy reconstruction error.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from models.base import HiddenLayers, TrainingConfig
from models.pca import PCA
from models.progress import Hooks
from models.training.loop import fit
from models.variants.dense import Activation, DenseAutoencoder, DenseConfig
from models.variants.rbm import RBM
from models.variants.stacked import linear_layers


class DeepConfig(DenseConfig):
    """784-1000-500-250-16 with sigmoid layers and a linear code."""

    variant: Literal["deep"] = "deep"
    hidden: HiddenLayers = Field(
        default_factory=lambda: [1000, 500, 250], description="RBM hidden sizes below the code."
    )
    activation: Activation = Field("sigmoid", description="Activation of the hidden layers (Bernoulli RBM units).")
    code_activation: Activation = Field("linear", description="The code layer (Gaussian RBM units).")
    rbm_epochs: int = Field(2, ge=1, le=100, description="Epochs of CD training per RBM.")
    cd_steps: int = Field(1, ge=1, le=25, description="k of CD-k.")
    rbm_lr: float = Field(1e-3, gt=0, le=1, description="Learning rate of RBM pretraining (Adam).")
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=5, lr=1e-3))


class DeepAutoencoder(DenseAutoencoder):
    """A dense autoencoder initialised from a pretrained RBM stack."""

    variant = "deep"
    config: DeepConfig

    def pretrain(self, images: Tensor, hooks: Hooks) -> dict[str, list[float]]:
        config = self.config
        sizes = [28 * 28, *config.hidden, config.code_dim]
        encoders, decoders = linear_layers(self.encoder), linear_layers(self.decoder)[::-1]
        data = self.prepare(images)
        losses: dict[str, list[float]] = {}
        for level, (visible, hidden) in enumerate(itertools.pairwise(sizes)):
            torch.manual_seed(config.training.seed + level)
            rbm = RBM(visible, hidden, gaussian_hidden=level == len(sizes) - 2)
            phase = f"RBM {level + 1}/{len(sizes) - 1} ({visible}-{hidden})"

            def cd_loss(batch: Tensor, rbm: RBM = rbm) -> Tensor:
                return rbm.contrastive_divergence_loss(batch, config.cd_steps)

            losses[phase] = fit(
                rbm.parameters(),
                cd_loss,
                data,
                epochs=config.rbm_epochs,
                batch_size=config.training.batch_size,
                lr=config.rbm_lr,
                seed=config.training.seed + level,
                phase=phase,
                hooks=hooks,
            )
            losses[f"{phase} reconstruction"] = [rbm.reconstruction_error(data[:2000])]
            with torch.no_grad():  # unroll: encoder gets W and c, the mirrored decoder W^T and b
                encoders[level].weight.copy_(rbm.weight)
                encoders[level].bias.copy_(rbm.hidden_bias)
                decoders[level].weight.copy_(rbm.weight.t())
                decoders[level].bias.copy_(rbm.visible_bias)
                data = rbm.hidden_mean(data)
        return losses

    def extra_metrics(self, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor]) -> dict[str, Any]:
        test_pixels = test[0].reshape(len(test[0]), -1).float().numpy() / 255.0
        train_pixels = train[0].reshape(len(train[0]), -1).float().numpy() / 255.0
        reconstruction = self.reconstruct(test[0]).reshape(len(test[0]), -1).numpy()
        dim = self.config.code_dim
        return {
            "reconstruction_mse": float(np.mean((reconstruction - test_pixels) ** 2)),
            f"pca_{dim}_reconstruction_mse": PCA.fit(train_pixels, dim).reconstruction_mse(test_pixels),
        }
