"""`aeseek bench serve`: what realistic uploads cost the service, against the work's own limit.

Three measurements on the same upload mix (app/bench/uploads.py):

1. Decoding and preprocessing alone, in a tight loop on one thread: CPU ms per upload
   (best of 5 per file, then median, mean and 90th percentile over the mix), for this
   checkout and, with `--compare-with PATH`, for another checkout of aeseek.
2. The work's own limit: the same code without HTTP (decode, preprocess, encode, search), one
   process per core, each cycling through the mix and searching in batches of LIMIT_BATCH
   (about what the micro-batcher forms at 32 connections): uploads per second.
3. The service under wrk at 32 connections, cycling through the mix: `aeseek serve` with one
   worker and with one worker per core, and the compared checkout, in interleaved rounds
   (median round): requests/s, p50/p99, errors, the share of the limit, and, from the one-worker
   server's /metrics, the milliseconds per request by stage.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from app.bench.common import Bench, machine, markdown_table, summary_line
from app.bench.serve import (
    BATCHED,
    AsyncioLoad,
    WrkLoad,
    median_rounds,
    multipart_body,
    scrape_metrics,
    serve_process,
    server_side,
)
from app.bench.uploads import upload_mix

CLIENTS = 32
LIMIT_BATCH = 8
# Runs in the compared checkout's Python (PYTHONPATH), so it imports whichever layout that has.
TIGHT_LOOP = """
import json, statistics, sys, time
from pathlib import Path
try:
    from models.data.preprocessing import DecodeLimits, load_pixels, open_image, to_grayscale, to_mnist
except ImportError:
    from models.preprocessing import DecodeLimits, load_pixels, open_image, to_grayscale, to_mnist
limits = DecodeLimits(max_pixels=50_000_000, max_bytes=50_000_000)
costs = []
for path in sorted(Path(sys.argv[1]).iterdir()):
    data, best = path.read_bytes(), float("inf")
    for _ in range(5):
        started = time.thread_time_ns()
        to_mnist(to_grayscale(load_pixels(open_image(data, limits))))
        best = min(best, (time.thread_time_ns() - started) / 1e6)
    costs.append(best)
costs.sort()
print(json.dumps({"median_ms": statistics.median(costs), "mean_ms": statistics.mean(costs),
                  "p90_ms": costs[int(0.9 * len(costs))], "uploads": len(costs)}))
"""


def tight_loop(upload_dir: Path, source: Path | None) -> dict[str, float]:
    """CPU ms per upload of decoding and preprocessing, by the code of `source` (this checkout when None)."""
    root = source or Path(__file__).resolve().parents[2]
    output = subprocess.run(
        [sys.executable, "-c", TIGHT_LOOP, str(upload_dir)], env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def _limit_worker(data_dir: str, upload_dir: str, seconds: float, queue: Any) -> None:
    import torch

    from app.services.runtime import Runtime, configure_threads
    from app.settings import Settings

    settings = Settings(data_dir=Path(data_dir), bootstrap=False, jobs_enabled=False, batching=False)
    configure_threads(settings)
    runtime = Runtime(settings)
    runtime.load_active()
    service = runtime.require_search()
    uploads = [path.read_bytes() for path in sorted(Path(upload_dir).iterdir())]
    done, started, turn = 0, time.perf_counter(), 0
    with torch.inference_mode():
        while time.perf_counter() - started < seconds:
            batch = [uploads[(turn + i) % len(uploads)] for i in range(LIMIT_BATCH)]
            turn += LIMIT_BATCH
            service.search_images([service.prepare_upload(data).query for data in batch], 10)
            done += len(batch)
    queue.put(done / (time.perf_counter() - started))


def work_limit(data_dir: Path, upload_dir: Path, processes: int, seconds: float) -> float:
    """Uploads per second the search work sustains without HTTP, `processes` processes at once."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_limit_worker, args=(str(data_dir), str(upload_dir), seconds, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rates = [queue.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join()
    return float(sum(rates))


def run_cost(bench: Bench, compare_with: Path | None = None) -> dict[str, Any]:
    """All three measurements; writes serve.json and serve.md."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    seconds, rounds = (2.0, 1) if bench.quick else (10.0, 3)
    cores = os.cpu_count() or 1
    mix = upload_mix(bench.workspace.split("test").images[:200], count=40 if bench.quick else 120)
    with tempfile.TemporaryDirectory(prefix="aeseek-cost-") as scratch, ExitStack() as servers:
        upload_dir = Path(scratch) / "uploads"
        upload_dir.mkdir()
        for upload in mix:
            (upload_dir / upload.name).write_bytes(upload.data)
        tight = {"this checkout": tight_loop(upload_dir, None)}
        if compare_with is not None:
            tight[f"compared: {compare_with}"] = tight_loop(upload_dir, compare_with)
        print(f"== the work's own limit: {cores} processes, batches of {LIMIT_BATCH}", file=sys.stderr)
        limit = work_limit(bench.workspace.root, upload_dir, cores, seconds)
        bodies = [multipart_body(upload.data) for upload in mix]
        load: WrkLoad | AsyncioLoad = WrkLoad(Path(scratch), bodies) if _has_wrk() else AsyncioLoad(bodies)
        # The old benchmark's single query, kept as a labelled row: a 28x28 MNIST PNG.
        mnist_only: Any = load.body_set([multipart_body(mix[0].data)])
        root = bench.workspace.root
        candidates: dict[str, tuple[Path | None, int]] = {
            "this checkout, 1 worker": (None, 1),
            f"this checkout, {cores} workers": (None, cores),
        }
        if compare_with is not None:
            candidates[f"compared: {compare_with}, 1 worker"] = (compare_with, 1)
        running = {
            name: servers.enter_context(serve_process(root, True, source=source, workers=workers))
            for name, (source, workers) in candidates.items()
        }
        rows = []
        measured = [(name, server, None) for name, server in running.items()]
        measured.append(("this checkout, 1 worker, 28x28 PNG only", running["this checkout, 1 worker"], mnist_only))
        for round_number in range(rounds):
            for name, server, only in measured:
                print(f"== {name}, round {round_number + 1}", file=sys.stderr)
                load.run(server.url, BATCHED, CLIENTS, min(seconds, 1.0), only)  # warm-up
                before = scrape_metrics(server.url)
                result = load.run(server.url, BATCHED, CLIENTS, seconds, only)
                after = scrape_metrics(server.url)
                row = {**result.row(), "scenario": name, "round": round_number}
                if name.endswith(", 1 worker"):  # the stage table is the one-worker server's (what it decodes where)
                    row |= server_side(before, after, BATCHED)
                row["share_of_limit"] = row["requests_per_s"] / limit
                rows.append(row)
    summary = {"uploads": len(mix), "tight_loop": tight, "limit_per_s": limit, "limit_batch": LIMIT_BATCH,
               "cores": cores, "clients": CLIENTS, "load_generator": load.name, "rows": median_rounds(rows),
               "all_rounds": rows}  # fmt: skip
    bench.write_json("serve", summary)
    bench.write_text("serve.md", summary_line(machine()) + _report(summary))
    return summary


def _has_wrk() -> bool:
    from shutil import which

    return which("wrk") is not None


def _report(summary: dict[str, Any]) -> str:
    tight = markdown_table(
        ["code", "median ms", "mean ms", "p90 ms"],
        [[name, t["median_ms"], t["mean_ms"], t["p90_ms"]] for name, t in summary["tight_loop"].items()],
    )
    served = markdown_table(
        ["server", "req/s", "p50 ms", "p99 ms", "errors", "share of the limit", "batch"],
        [[r["scenario"], r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["errors"], r["share_of_limit"],
          r.get("mean_batch_size", "-")] for r in summary["rows"]],
    )  # fmt: skip
    stages = next((r.get("stages_ms") for r in summary["rows"] if r.get("stages_ms")), None)
    stage_line = (
        "Server milliseconds per request by stage (one worker, means from /metrics): "
        + ", ".join(f"{stage} {ms:.2f}" for stage, ms in stages.items())
        if stages
        else ""
    )
    return (
        f"\n\n{summary['uploads']} uploads of the realistic mix (app/bench/uploads.py).\n\n"
        f"Decoding and preprocessing, one thread, tight loop, CPU ms per upload:\n\n{tight}\n\n"
        f"The work's own limit without HTTP ({summary['cores']} processes, batches of {summary['limit_batch']}): "
        f"{summary['limit_per_s']:.0f} uploads/s.\n\n"
        f"The service at {summary['clients']} connections ({summary['load_generator']}), median of the rounds:\n\n"
        f"{served}\n\n{stage_line}\n\nReproduce: `aeseek bench serve [--compare-with PATH]`; "
        "the 28x28-only matrix: `aeseek bench serve-matrix`.\n"
    )
