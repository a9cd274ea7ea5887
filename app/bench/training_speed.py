"""`aeseek bench train`: training and encoding throughput of the default conv model.

Side by side in one run, round-robin and repeated (the median is kept, since the machine
is shared): aeseek's own training loop (`models.training.train`: uint8 batches prepared on
the fly, Adam, one-cycle schedule, progress callback) against a bare PyTorch loop over the
same network on a ready float tensor; then the bare loop's response to threads, batch size,
channels_last and torch.compile; then gallery encoding throughput.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from app.bench.common import Bench, machine, markdown_table, summary_line
from app.services.workspace import embed_images
from models.training.trainer import train
from models.variants.conv import ConvAutoencoder, ConvConfig

STEPS = 30
REPEATS = 3


def _images(bench: Bench, count: int) -> torch.Tensor:
    return torch.from_numpy(bench.workspace.split("train").images[:count].copy())


def _model(batch_size: int) -> ConvAutoencoder:
    torch.manual_seed(0)
    return ConvAutoencoder(ConvConfig.model_validate({"training": {"batch_size": batch_size, "epochs": 1}}))


def aeseek_loop(images: torch.Tensor, batch_size: int, steps: int) -> float:
    """Images/s of models.training.train for `steps` steps (with a progress callback, as the CLI has)."""
    model = _model(batch_size)
    train(model, images[: batch_size * 2], max_steps=2)  # warm-up
    started = time.perf_counter()
    train(model, images[: batch_size * steps], max_steps=steps, on_progress=lambda progress: None)
    return batch_size * steps / (time.perf_counter() - started)


def bare_loop(
    images: torch.Tensor, batch_size: int, steps: int, channels_last: bool = False, compiled: bool = False
) -> float:
    """Images/s of the plainest loop over the same network: forward, MSE, backward, Adam step."""
    model = _model(batch_size)
    model.train()
    data = model.prepare(images[: batch_size * steps])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        data = data.contiguous(memory_format=torch.channels_last)
    network: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch: torch.Tensor) -> None:
        loss = F.mse_loss(network(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for start in range(0, batch_size * 2, batch_size):  # warm-up (and compilation)
        step(data[start : start + batch_size])
    started = time.perf_counter()
    for start in range(0, batch_size * steps, batch_size):
        step(data[start : start + batch_size])
    return batch_size * steps / (time.perf_counter() - started)


def _median(measure: Callable[[], float], repeats: int) -> float:
    return statistics.median(measure() for _ in range(repeats))


def run_training_speed(bench: Bench) -> dict[str, Any]:
    """Measure and write train_speed.json and train_speed.md."""
    steps, repeats = (3, 1) if bench.quick else (STEPS, REPEATS)
    images = _images(bench, 256 * steps)
    threads = torch.get_num_threads()
    results: dict[str, Any] = {"threads": threads, "steps": steps, "repeats": repeats}

    print("== aeseek loop against the bare loop (batch 128)", file=sys.stderr)
    ours, bare = [], []
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits both alike
        ours.append(aeseek_loop(images, 128, steps))
        bare.append(bare_loop(images, 128, steps))
    results["aeseek_images_per_s"] = statistics.median(ours)
    results["bare_images_per_s"] = statistics.median(bare)
    results["bare_over_aeseek"] = results["bare_images_per_s"] / results["aeseek_images_per_s"]

    variations: list[dict[str, Any]] = []
    for name, kwargs, thread_count in [
        ("batch 64", {"batch_size": 64}, threads),
        ("batch 128", {"batch_size": 128}, threads),
        ("batch 256", {"batch_size": 256}, threads),
        ("batch 128, 1 thread", {"batch_size": 128}, 1),
        ("batch 128, channels_last", {"batch_size": 128, "channels_last": True}, threads),
        ("batch 128, torch.compile", {"batch_size": 128, "compiled": True}, threads),
    ]:
        print(f"== bare loop, {name}", file=sys.stderr)
        if bench.quick and kwargs.get("compiled"):  # compiling takes a minute or two: not in smoke runs
            variations.append({"setting": name, "images_per_s": None, "error": "skipped in quick mode"})
            continue
        torch.set_num_threads(thread_count)
        try:
            rate = _median(lambda kwargs=kwargs: bare_loop(images, steps=steps, **kwargs), repeats)  # type: ignore[misc]
            variations.append({"setting": name, "images_per_s": rate, "error": None})
        except Exception as error:  # torch.compile needs a compiler toolchain; report, do not fail
            variations.append(
                {"setting": name, "images_per_s": None, "error": f"{type(error).__name__}: {error}"[:200]}
            )
        finally:
            torch.set_num_threads(threads)
    results["variations"] = variations

    print("== gallery encoding", file=sys.stderr)
    model = _model(128).eval()
    gallery = bench.workspace.split("train").images[: 2000 if bench.quick else 20000]
    embed_images(model, gallery[:1024])
    started = time.perf_counter()
    embed_images(model, gallery)
    results["encode_images_per_s"] = len(gallery) / (time.perf_counter() - started)

    bench.write_json("train_speed", results)
    table = markdown_table(
        ["loop", "images/s"],
        [
            ["aeseek (`models.training.train`)", f"{results['aeseek_images_per_s']:.0f}"],
            ["bare PyTorch loop, same network", f"{results['bare_images_per_s']:.0f}"],
        ],
    )
    table += f"\nbare / aeseek = {results['bare_over_aeseek']:.2f}x\n\n"
    table += markdown_table(
        ["bare loop setting", "images/s"],
        [[v["setting"], f"{v['images_per_s']:.0f}" if v["images_per_s"] else v["error"]] for v in variations],
    )
    table += f"\nGallery encoding (eval, batches of 1024): {results['encode_images_per_s']:.0f} images/s.\n"
    bench.write_text("train_speed.md", summary_line(machine()) + table)
    return results
