"""A layer-by-layer table of a model: output shape and parameters, from a real forward pass."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.base import Autoencoder


@dataclass(frozen=True)
class LayerRow:
    """One leaf layer: its dotted name, type, output shape (batch dim dropped) and parameters."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int


def layer_table(model: Autoencoder) -> list[LayerRow]:
    """Run one blank image through encode and decode and record every leaf layer's output."""
    rows: list[LayerRow] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) > 0 or name == "":
            continue

        def record(module: nn.Module, _inputs: object, output: torch.Tensor, name: str = name) -> None:
            rows.append(
                LayerRow(
                    name,
                    type(module).__name__,
                    tuple(output.shape[1:]),
                    sum(p.numel() for p in module.parameters()),
                )
            )

        hooks.append(module.register_forward_hook(record))
    try:
        images = torch.zeros(2, 28, 28, dtype=torch.uint8)
        model.eval()
        with torch.no_grad():
            model.decode(model.encode(model.prepare(images)))
    finally:
        for hook in hooks:
            hook.remove()
    return rows


def describe(model: Autoencoder) -> str:
    """A printable table of the layers, shapes and parameter counts."""
    rows = layer_table(model)
    lines = [f"{'layer':<24} {'type':<16} {'output':<16} {'params':>9}", "-" * 68]
    lines += [
        f"{row.name:<24} {row.kind:<16} {'x'.join(map(str, row.output_shape)):<16} {row.parameters:>9,}" for row in rows
    ]
    lines += ["-" * 68, f"{'total trainable parameters':<58} {model.parameter_count():>9,}"]
    return "\n".join(lines)
