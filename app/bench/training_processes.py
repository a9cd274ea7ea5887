"""`aeseek bench train --nproc 1,2`: training throughput of the default conv model across processes.

Each process count trains the same config (the default conv model, one epoch over the same first
images) through `train_model`, round-robin and repeated, keeping the median. Two rates per count:
the training loop's own (images over the seconds the loop ran, as the model's history records
them), and end to end (images over the whole call's wall time: starting torchrun and the ranks,
loading MNIST in each, training, saving).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

from app.bench.common import Bench, machine, markdown_table, summary_line
from app.services.distributed import train_model
from models.registry import DEFAULT_VARIANT, config_from_dict, default_config

IMAGES, QUICK_IMAGES = 16384, 512
REPEATS = 3


def _threads_each(nproc: int) -> int:
    return max(1, (os.cpu_count() or 1) // nproc)


def measure(bench: Bench, nproc: int, images: int) -> dict[str, float]:
    """One epoch over `images` images across `nproc` processes: loop and end-to-end images/s, last loss."""
    fields = default_config(DEFAULT_VARIANT).model_dump(mode="json")
    fields["training"] = {**fields["training"], "epochs": 1, "train_subset": images}
    started = time.perf_counter()
    record = train_model(bench.workspace, config_from_dict(fields), nproc)
    wall = time.perf_counter() - started
    history = record.history
    return {
        "loop_images_per_s": history["images_seen"] / history["seconds"],
        "wall_s": wall,
        "end_to_end_images_per_s": images / wall,
        "loss": history["epoch_losses"][-1],
    }


def run_process_scaling(bench: Bench, counts: list[int]) -> dict[str, Any]:
    """Measure each process count and write train_nproc.json and train_nproc.md."""
    target, repeats = (QUICK_IMAGES, 1) if bench.quick else (IMAGES, REPEATS)
    images = min(target, len(bench.workspace.split("train").images))  # loaded once, outside the timings
    runs: dict[int, list[dict[str, float]]] = {count: [] for count in counts}
    for repeat in range(repeats):  # round-robin, so drift on a shared machine hits every count alike
        for count in counts:
            print(f"== {count} process(es), repeat {repeat + 1}/{repeats}", file=sys.stderr)
            runs[count].append(measure(bench, count, images))
    rows = []
    for count in counts:
        medians = {key: statistics.median(run[key] for run in runs[count]) for key in runs[count][0]}
        rows.append({"nproc": count, "threads_each": _threads_each(count), **medians})
    baseline = rows[0]["loop_images_per_s"]
    for row in rows:
        row["speed_up"] = row["loop_images_per_s"] / baseline
    results = {"images": images, "repeats": repeats, "epochs": 1, "rows": rows}
    bench.write_json("train_nproc", results)
    table = markdown_table(
        ["processes", "threads each", "training loop images/s", "speed-up", "wall s (start-up included)",
         "images/s end to end", "loss after the epoch"],
        [[row["nproc"], row["threads_each"], f"{row['loop_images_per_s']:.0f}", f"{row['speed_up']:.2f}x",
          f"{row['wall_s']:.1f}", f"{row['end_to_end_images_per_s']:.0f}", row["loss"]] for row in rows],
    )  # fmt: skip
    note = (
        f"\nThe default conv model, one epoch over the first {images:,} training images (global batch "
        f"{default_config(DEFAULT_VARIANT).training.batch_size}), median of {repeats}; "
        f"{machine()['cores']} cores.\n"
    )
    bench.write_text("train_nproc.md", summary_line(machine()) + table + note)
    return results
