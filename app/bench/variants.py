"""`aeseek bench variants`: every variant at its default config, one table and one picture.

Each variant trains on the full MNIST training set (or a small subset with --quick), is
evaluated on the foundation's protocol (10k test queries, 60k training gallery), and
reconstructs the first test image of each digit for a grid with one row per variant.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import torch

from app.bench.common import Bench, machine, markdown_table, summary_line
from app.rendering.plots import labelled_grid_png
from app.rendering.png import to_uint8
from app.services.evaluation import evaluate_and_record
from models.checkpoints import load_model, read_record
from models.registry import VARIANTS

ORDER = [
    "vanilla", "multilayer", "stacked", "deep", "denoising", "conv", "conv_vae",
    "l2", "sparse", "contractive", "vae", "lstm",
]  # fmt: skip


def one_per_digit(labels: np.ndarray) -> np.ndarray:
    """Index of the first image of each digit 0-9."""
    return np.array([int(np.flatnonzero(labels == digit)[0]) for digit in range(10)])


def run_variants(bench: Bench, variants: list[str]) -> list[dict[str, Any]]:
    """Train, evaluate and picture each variant; write variants.json, variants.md, variants.png."""
    test = bench.workspace.split("test")
    shown = one_per_digit(test.labels)
    originals = test.images[shown]
    rows: list[dict[str, Any]] = []
    for variant in variants:
        print(f"== {variant}", file=sys.stderr)
        record = bench.train(bench.config({"variant": variant}))
        [evaluation] = evaluate_and_record(bench.workspace, record.version)
        record = read_record(bench.workspace.models_dir / record.version)  # now with its metrics
        extras = {
            key: value
            for key, value in record.metrics.items()
            if key not in ("retrieval", "evaluated", "reconstruction_mse")
        }
        rows.append(
            {
                "variant": variant,
                "version": record.version,
                "code_dim": int(record.config["code_dim"]),
                "parameters": record.parameters,
                "train_seconds": round(float(record.history.get("seconds", 0.0)), 1),
                "reconstruction_mse": evaluation.reconstruction_mse,
                "p_at_10": evaluation.p_at_10,
                "map_at_100": evaluation.map_at_100,
                "extras": extras,
            }
        )
    rows = _merge_with_earlier(bench, rows)
    pictures = [("original", list(originals)), *_pictures_of(bench, rows, originals)]
    bench.write_json("variants", rows)
    header = ["variant", "code", "params", "train s", "recon. MSE", "P@10", "mAP@100", "notes"]
    table = markdown_table(
        header,
        [
            [
                row["variant"], row["code_dim"], f"{row['parameters']:,}", f"{row['train_seconds']:.0f}",
                row["reconstruction_mse"], row["p_at_10"], row["map_at_100"], _notes(row["extras"]),
            ]
            for row in rows
        ],
    )  # fmt: skip
    bench.write_text("variants.md", summary_line(machine()) + table)
    bench.write_png("variants.png", labelled_grid_png(pictures))
    return rows


def _merge_with_earlier(bench: Bench, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of this run, plus earlier rows (variants.json) of variants not rerun, in the chapter's order."""
    path = bench.out_dir / "variants.json"
    earlier = json.loads(path.read_text())["results"] if path.is_file() and not bench.quick else []
    by_variant = {row["variant"]: row for row in earlier}
    by_variant.update({row["variant"]: row for row in rows})
    return [by_variant[name] for name in ORDER if name in by_variant]


def _pictures_of(bench: Bench, rows: list[dict[str, Any]], originals: np.ndarray) -> list[tuple[str, list[np.ndarray]]]:
    pictures = []
    for row in rows:
        model, _ = load_model(bench.workspace.models_dir / row["version"])
        reconstructions = model.reconstruct(torch.from_numpy(originals)).numpy()
        pictures.append((row["variant"], [to_uint8(image) for image in reconstructions]))
    return pictures


def _notes(extras: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(extras.items()):
        parts.append(f"{key.replace('_', ' ')} {value:.4f}" if isinstance(value, float) else f"{key} {value}")
    return "; ".join(parts)


def known_variants(names: str | None) -> list[str]:
    """The variants to run: all in the chapter's order, or a comma-separated choice."""
    if not names:
        return ORDER
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {', '.join(ORDER)}")
    return chosen
