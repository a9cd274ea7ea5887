"""What every benchmark shares: where results go, the machine they ran on, training with a bar."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from app.progress import TrainingBar
from app.services.workspace import Workspace
from models.base import AutoencoderConfig
from models.checkpoints import ModelRecord
from models.registry import config_from_dict, default_config
from models.storage import atomic_write_bytes, atomic_write_json

# Quick mode: enough to exercise every code path on a few hundred images (tests, smoke runs).
QUICK_TRAINING = {"epochs": 1, "train_subset": 512}
QUICK_OVERRIDES: dict[str, Any] = {"layer_epochs": 1, "rbm_epochs": 1}


def machine() -> dict[str, Any]:
    """The machine and library versions a result was measured with."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
    }


@dataclass
class Bench:
    """One benchmark run: the workspace it trains in and the directory it writes to."""

    workspace: Workspace
    out_dir: Path
    quick: bool = False

    def config(self, raw: dict[str, Any]) -> AutoencoderConfig:
        """A variant config from fields, shrunk to a smoke run in quick mode."""
        fields = default_config(raw["variant"]).model_dump(mode="json")
        fields.update(raw)
        if self.quick:
            fields["training"] = {**fields["training"], **QUICK_TRAINING}
            fields.update({key: value for key, value in QUICK_OVERRIDES.items() if key in fields})
        return config_from_dict(fields)

    def train(self, config: AutoencoderConfig) -> ModelRecord:
        """Train with a progress bar; returns the saved model's record."""
        bar = TrainingBar()
        try:
            return self.workspace.train(config, on_progress=bar)
        finally:
            bar.close()

    def write_json(self, name: str, value: Any) -> Path:
        """Write results (with the machine) as JSON under the output directory."""
        path = self.out_dir / f"{name}.json"
        atomic_write_json(path, {"machine": machine(), "quick": self.quick, "results": value})
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Write a Markdown table or note under the output directory."""
        path = self.out_dir / name
        atomic_write_bytes(path, text.encode())
        return path

    def write_png(self, name: str, data: bytes) -> Path:
        """Write a PNG under the output directory."""
        path = self.out_dir / name
        atomic_write_bytes(path, data)
        return path


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; floats get 4 decimals."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return "n/a" if value is None else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def summary_line(info: dict[str, Any]) -> str:
    """'Measured on ... on DATE' for the top of a results file."""
    return (
        f"Measured {info['date']} on {info['cores']} cores ({info['cpu']}), Python {info['python']}, "
        f"torch {info['torch']}, faiss {info['faiss']}.\n\n"
    )
