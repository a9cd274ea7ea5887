"""Stacked autoencoder (4.3.3, Figs 4.5-4.7): greedy layer-wise training.

h1 is trained as a shallow autoencoder of the input (Fig 4.5); then, with h1 frozen, h2 is
trained as a shallow autoencoder of h1's codes (Fig 4.6), and so on up to the code layer.
The trained layers are stacked into one encoder and their decoders into the mirrored
decoder; optionally the whole stack is fine-tuned end to end, and a softmax classifier is
trained on the final code (Fig 4.7) and its test accuracy reported.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from models.base import HiddenLayers, TrainingConfig
from models.progress import Hooks
from models.training.loop import fit
from models.variants.dense import ACTIVATIONS, Activation, DenseAutoencoder, DenseConfig
from models.variants.losses import reconstruction_loss


class StackedConfig(DenseConfig):
    """784 -> 256 -> 64 -> 16, each layer trained alone first."""

    variant: Literal["stacked"] = "stacked"
    hidden: HiddenLayers = Field(default_factory=lambda: [256, 64], description="Hidden sizes below the code.")
    activation: Activation = Field("sigmoid", description="Activation of every hidden layer.")
    code_activation: Activation = Field("sigmoid", description="Activation of the code layer.")
    layer_epochs: int = Field(3, ge=1, le=100, description="Epochs of greedy training per layer.")
    fine_tune: bool = Field(True, description="After the greedy phase, train the whole stack end to end.")
    classifier: bool = Field(True, description="Train a softmax classifier on the code; report its accuracy.")
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=5, lr=2e-3))


def linear_layers(stack: nn.Sequential) -> list[nn.Linear]:
    """The Linear layers of a stack, in order."""
    return [module for module in stack if isinstance(module, nn.Linear)]


class StackedAutoencoder(DenseAutoencoder):
    """A dense autoencoder whose layers are first trained one at a time."""

    variant = "stacked"
    config: StackedConfig

    @property
    def trains_end_to_end(self) -> bool:
        return self.config.fine_tune

    def pretrain(self, images: Tensor, hooks: Hooks) -> dict[str, list[float]]:
        encoders, decoders = linear_layers(self.encoder), linear_layers(self.decoder)[::-1]
        config = self.config
        depth = len(encoders)
        features = self.prepare(images)
        losses: dict[str, list[float]] = {}
        for level, (encoder, decoder) in enumerate(zip(encoders, decoders, strict=True)):
            hidden = ACTIVATIONS[config.code_activation if level == depth - 1 else config.activation]()
            outer = level == 0

            def shallow_loss(
                batch: Tensor,
                encoder: nn.Linear = encoder,
                decoder: nn.Linear = decoder,
                hidden: nn.Module = hidden,
                outer: bool = outer,
            ) -> Tensor:
                logits = decoder(hidden(encoder(batch)))
                if outer:  # the input layer: the model's own reconstruction loss on pixels
                    return reconstruction_loss(config.reconstruction, logits, batch)
                inner = ACTIVATIONS[config.activation]()
                return F.mse_loss(inner(logits), batch, reduction="sum") / batch.shape[0]

            phase = f"layer {level + 1}/{depth}"
            losses[phase] = fit(
                [*encoder.parameters(), *decoder.parameters()],
                shallow_loss,
                features,
                epochs=config.layer_epochs,
                batch_size=config.training.batch_size,
                lr=config.training.lr,
                seed=config.training.seed + level,
                phase=phase,
                hooks=hooks,
            )
            with torch.no_grad():  # the trained layer is frozen: its codes feed the next one
                features = hidden(encoder(features))
        return losses

    def extra_metrics(self, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor]) -> dict[str, Any]:
        if not self.config.classifier:
            return {}
        return {"classifier_test_accuracy": code_classifier_accuracy(self, train, test)}


def code_classifier_accuracy(
    model: DenseAutoencoder, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], epochs: int = 200
) -> float:
    """Test accuracy of a softmax classifier trained (full batch) on the frozen codes (Fig 4.7)."""
    train_codes, test_codes = model.embed(train[0]), model.embed(test[0])
    mean, std = train_codes.mean(dim=0), train_codes.std(dim=0).clamp_min(1e-6)
    classifier = nn.Linear(train_codes.shape[1], 10)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.05)
    inputs, labels = (train_codes - mean) / std, train[1].long()
    for _ in range(epochs):
        optimizer.zero_grad()
        F.cross_entropy(classifier(inputs), labels).backward()
        optimizer.step()
    with torch.no_grad():
        predicted = classifier((test_codes - mean) / std).argmax(dim=1)
    return float((predicted == test[1].long()).float().mean())
