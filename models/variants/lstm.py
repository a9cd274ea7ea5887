"""LSTM sequence autoencoder (Real-World Example 3; Srivastava, Mansimov & Salakhutdinov 2015).

An encoder LSTM reads a sequence; its final state becomes the code. A decoder LSTM, started
from the code, reconstructs the sequence in reverse order (the paper's choice: the last
frame read is the first rebuilt). An optional future-predictor LSTM, also started from the
code, predicts the frames that follow. The decoders are unconditioned (fed zeros).

Two kinds of sequence:
* `rows` (default): an MNIST digit read top to bottom as 28 rows of 28 pixels, so the code
  of a single image can be indexed and searched like any other model's.
* `moving_mnist`: two digits bouncing in 64x64 frames (models/moving_mnist.py), generated
  from the training digits with the config's seed. Searching embeds a digit as a still
  sequence at the frame's centre.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from models.base import Autoencoder, AutoencoderConfig, TrainingConfig
from models.data.moving_mnist import DIGIT, FRAME, SPAN, moving_mnist, static_sequence


class LSTMConfig(AutoencoderConfig):
    """Row sequences of single digits by default; Moving MNIST with `sequence`."""

    variant: Literal["lstm"] = "lstm"
    sequence: Literal["rows", "moving_mnist"] = Field("rows", description="What a sequence is.")
    hidden_size: int = Field(128, ge=1, le=1024, description="Units of each LSTM.")
    frames: int = Field(10, ge=2, le=20, description="Moving MNIST: frames the encoder reads.")
    future_frames: int = Field(0, ge=0, le=20, description="Moving MNIST: frames the future predictor predicts.")
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=6, lr=3e-3))

    @model_validator(mode="after")
    def _future_needs_frames(self) -> LSTMConfig:
        if self.future_frames and self.sequence != "moving_mnist":
            raise ValueError("future_frames needs sequence 'moving_mnist' (rows have no future)")
        return self


class SequenceDecoder(nn.Module):
    """An unconditioned LSTM started from the code, emitting `steps` frames of logits."""

    def __init__(self, code_dim: int, hidden_size: int, frame_size: int) -> None:
        super().__init__()
        self.start = nn.Linear(code_dim, 2 * hidden_size)
        self.lstm = nn.LSTM(frame_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, frame_size)
        self.frame_size = frame_size

    def forward(self, z: Tensor, steps: int) -> Tensor:
        h0, c0 = torch.tanh(self.start(z)).unsqueeze(0).chunk(2, dim=2)  # (1, B, hidden) each
        inputs = z.new_zeros(z.shape[0], steps, self.frame_size)
        output, _ = self.lstm(inputs, (h0.contiguous(), c0.contiguous()))
        return self.readout(output)  # (B, steps, frame_size) logits


class LSTMAutoencoder(Autoencoder):
    """Encoder LSTM -> code -> reverse-order decoder LSTM (+ optional future predictor)."""

    variant = "lstm"
    config: LSTMConfig

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        self.frame_size = DIGIT if config.sequence == "rows" else FRAME * FRAME
        self.steps = DIGIT if config.sequence == "rows" else config.frames
        self.encoder = nn.LSTM(self.frame_size, config.hidden_size, batch_first=True)
        self.to_code = nn.Linear(config.hidden_size, config.code_dim)
        self.reconstructor = SequenceDecoder(config.code_dim, config.hidden_size, self.frame_size)
        self.predictor = (
            SequenceDecoder(config.code_dim, config.hidden_size, self.frame_size) if config.future_frames else None
        )
        self._sequences = torch.Generator().manual_seed(config.training.seed)

    def prepare(self, images: Tensor) -> Tensor:
        """uint8 digits (B, 28, 28) -> float sequences (B, T, frame_size) in [0, 1]."""
        if self.config.sequence == "rows":
            return images.float().div(255.0)  # 28 steps of 28 pixels
        length = self.config.frames + self.config.future_frames
        # Training sees moving digits; embedding a single digit uses a still sequence.
        frames = moving_mnist(images, length, self._sequences) if self.training else static_sequence(images, length)
        return frames.reshape(len(images), length, -1).float().div(255.0)

    def encode(self, x: Tensor) -> Tensor:
        _, (hidden, _) = self.encoder(x[:, : self.steps])
        return self.to_code(hidden[-1])

    def decode(self, z: Tensor) -> Tensor:
        """The reconstructed input sequence, in its original order, as probabilities."""
        return torch.sigmoid(self.reconstructor(z, self.steps)).flip(dims=[1])

    def to_unit(self, output: Tensor) -> Tensor:
        if self.config.sequence == "rows":
            return output.reshape(-1, DIGIT, DIGIT).clamp(0.0, 1.0)
        first = output[:, 0].reshape(-1, FRAME, FRAME)  # a still digit: any frame, cropped to 28x28
        offset = SPAN // 2
        return first[:, offset : offset + DIGIT, offset : offset + DIGIT].clamp(0.0, 1.0)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        seen = x[:, : self.steps]
        z = self.encode(seen)
        target = seen.flip(dims=[1])  # reverse order (Srivastava et al. 2015, section 2.3)
        reconstruction = F.binary_cross_entropy_with_logits(
            self.reconstructor(z, self.steps), target, reduction="sum"
        ) / len(x)
        parts = {"reconstruction": reconstruction}
        if self.predictor is not None:
            future = x[:, self.steps :]
            parts["future"] = F.binary_cross_entropy_with_logits(
                self.predictor(z, future.shape[1]), future, reduction="sum"
            ) / len(x)
        parts["loss"] = torch.stack(list(parts.values())).sum()
        return parts

    @torch.no_grad()
    def predict_future(self, sequences: Tensor) -> Tensor:
        """Predicted future frames (B, future_frames, 64, 64) of prepared sequences."""
        if self.predictor is None:
            raise ValueError("this model has no future predictor (future_frames is 0)")
        self.eval()
        z = self.encode(sequences)
        frames = torch.sigmoid(self.predictor(z, self.config.future_frames))
        return frames.reshape(len(sequences), -1, FRAME, FRAME)
