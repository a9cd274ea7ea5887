"""A model's encoder frozen into one TorchScript graph, for query-time encoding.

Why: an eager forward pass returns to Python between layers and must take the GIL back
each time. In a server whose event loop keeps the GIL busy, each of those hand-backs waits
for the interpreter's switch interval; in a one-off measurement on the 2-core dev VM,
encoding 16 queries took 203 ms eager against 19 ms traced while another thread ran Python
(3.8 vs 3.2 ms on a quiet process).
A traced graph runs from one call with the GIL released.

Tracing is only trusted after it reproduces the eager codes; any variant it cannot trace
faithfully keeps its eager `embed`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from models.base import Autoencoder

logger = logging.getLogger("aeseek.models")

Embed = Callable[[Tensor], Tensor]
# Codes from the traced graph must match eager ones to this (absolute) tolerance.
TOLERANCE = 1e-4


class _Embedding(nn.Module):
    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        return self.model.retrieval_code(self.model.prepare(images)).float()


def frozen_embed(model: Autoencoder) -> Embed:
    """A function from uint8 (B, 28, 28) images to codes, traced when that is exact, else `model.embed`."""
    model.eval()
    generator = torch.Generator().manual_seed(0)
    probe = torch.randint(0, 256, (3, 28, 28), generator=generator, dtype=torch.uint8)
    try:
        # TorchScript is deprecated in favour of torch.compile/export, neither of which gives one
        # GIL-free call on CPU; should a later torch drop it, the fallback below keeps encoding eager.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            graph = torch.jit.freeze(torch.jit.trace(_Embedding(model).eval(), probe[:2], check_trace=False))
            for batch in (probe[:1], probe):  # other batch sizes than the traced one
                if not torch.allclose(graph(batch), model.embed(batch), atol=TOLERANCE, rtol=0.0):
                    raise ValueError("the traced codes differ from the eager ones")
    except Exception as error:  # any failure to trace means eager encoding, never a failed activation
        logger.info("encoding %s eagerly: %s", type(model).__name__, error)
        return model.embed

    def embed(images: Tensor) -> Tensor:
        with torch.no_grad():
            return graph(images)

    return embed
