"""`aeseek bench serve-matrix`: a bounded loopback load against a real uvicorn server, 28x28 PNG queries.

For each of 1, 8, 32 and 64 concurrent clients (a fixed number of seconds each, then it
stops), it measures requests/s and p50/p95/p99 latency of: the health endpoint (the HTTP
stack's own ceiling), search with micro-batching off and on, over the default exact index and
over an IVF index (exact search is the largest piece of a query's compute). The server runs
in its own process (`aeseek serve` on the active model).

The load comes from wrk (a C load generator; `apt-get install wrk`) in its own process, so
it barely takes CPU from the server; without wrk, asyncio clients in this process stand in
(and take a core from the server: those figures are lower bounds, and say so).

Where the time goes comes from the server itself: the per-stage means (decode, preprocess,
encode, search, queue, serialise) that it exports on /metrics, the rest of its request time
(HTTP parsing, routing, form parsing, middleware), and the CPU each of its threads used.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from app.bench.common import Bench, machine, markdown_table, summary_line
from app.rendering.plots import curves_png
from app.services.workspace import Workspace
from index.backend import IndexSpec

CLIENTS = (1, 8, 32, 64)
BOUNDARY = "aeseek-bench-boundary"
HEALTH, UNBATCHED, BATCHED = "health", "search, unbatched", "search, batched"
UNBATCHED_IVF, BATCHED_IVF = "search, unbatched, IVF", "search, batched, IVF"
SCENARIOS = (HEALTH, UNBATCHED, BATCHED, UNBATCHED_IVF, BATCHED_IVF)
# The IVF index of the last scenario: recall@10 0.986 against exact search at 60k (bench index).
IVF_SPEC = IndexSpec(kind="IVF", nlist=1024, nprobe=16)

WRK_SCRIPT = """
-- The request bodies (uploads) are files body-1.bin ... body-N.bin; each connection cycles through them.
local bodies = {}
local directory = os.getenv("AESEEK_BENCH_BODIES")
local count = tonumber(os.getenv("AESEEK_BENCH_BODY_COUNT") or "0")
for i = 1, count do
  local file = io.open(directory .. "/body-" .. i .. ".bin", "rb")
  bodies[i] = file:read("*all")
  file:close()
end
local next_body = 0
local headers = {["Content-Type"] = "multipart/form-data; boundary=%(boundary)s"}
request = function()
  if count == 0 then
    return wrk.format("GET")
  end
  next_body = next_body %% count + 1
  return wrk.format("POST", nil, headers, bodies[next_body])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'AESEEK {"requests": %%d, "seconds": %%.4f, "errors": %%d, "non_2xx": %%d, ' ..
    '"p50_ms": %%.3f, "p95_ms": %%.3f, "p99_ms": %%.3f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass
class LoadResult:
    """What one endpoint did under one level of concurrency, as the load generator saw it."""

    scenario: str
    clients: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """Summary numbers."""
        return {
            "scenario": self.scenario,
            "clients": self.clients,
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_s": self.requests / self.seconds,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            **self.server,
        }


def multipart_body(png: bytes) -> bytes:
    """A search request's body: one PNG in form field `file`."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="query.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + png + f"\r\n--{BOUNDARY}--\r\n".encode()


class WrkLoad:
    """Load from wrk in its own process."""

    name = "wrk (C, own process)"

    def __init__(self, workdir: Path, bodies: list[bytes]) -> None:
        self.script = workdir / "load.lua"
        self.script.write_text(WRK_SCRIPT % {"boundary": BOUNDARY})
        self.workdir, self.sets = workdir, 0
        self.bodies = self.body_set(bodies)

    def body_set(self, bodies: list[bytes]) -> tuple[Path, int]:
        """Write request bodies for wrk to cycle through; returns what `run` takes as `bodies`."""
        self.sets += 1
        directory = self.workdir / f"bodies-{self.sets}"
        directory.mkdir()
        for number, body in enumerate(bodies, start=1):
            (directory / f"body-{number}.bin").write_bytes(body)
        return directory, len(bodies)

    def run(
        self, url: str, scenario: str, clients: int, seconds: float, bodies: tuple[Path, int] | None = None
    ) -> LoadResult:
        """Run wrk for `seconds` at `clients` open connections (cycling through `bodies` when searching)."""
        path = "/api/v1/health" if scenario == HEALTH else "/api/v1/search"
        directory, count = bodies or self.bodies
        env = {
            **os.environ,
            "AESEEK_BENCH_BODIES": str(directory),
            "AESEEK_BENCH_BODY_COUNT": "0" if scenario == HEALTH else str(count),
        }
        duration = f"-d{max(1, round(seconds))}s"  # wrk counts whole seconds
        command = ["wrk", "-t1", f"-c{clients}", duration, "--timeout", "10s", "-s", str(self.script)]
        command.append(url + path)
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        line = next(line for line in output.splitlines() if line.startswith("AESEEK "))
        summary = json.loads(line.removeprefix("AESEEK "))
        return LoadResult(
            scenario, clients, summary["requests"], summary["errors"] + summary["non_2xx"], summary["seconds"],
            summary["p50_ms"], summary["p95_ms"], summary["p99_ms"],
        )  # fmt: skip


class AsyncioLoad:
    """Load from asyncio httpx clients in this process (when wrk is not installed)."""

    name = "asyncio httpx clients in the benchmark's own process (share the server's cores: lower bounds)"

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies

    def body_set(self, bodies: list[bytes]) -> list[bytes]:
        """Request bodies to cycle through; `run` takes them as `bodies`."""
        return bodies

    def run(
        self, url: str, scenario: str, clients: int, seconds: float, bodies: list[bytes] | None = None
    ) -> LoadResult:
        """Run `clients` keep-alive clients in a loop for `seconds` (cycling through `bodies` when searching)."""
        return asyncio.run(self._run(url, scenario, clients, seconds, bodies or self.bodies))

    async def _run(self, url: str, scenario: str, clients: int, seconds: float, bodies: list[bytes]) -> LoadResult:
        latencies: list[float] = []
        errors = 0
        stop_at = time.perf_counter() + seconds
        headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}

        turn = itertools.count()

        async def client_loop(client: httpx.AsyncClient) -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    if scenario == HEALTH:
                        response = await client.get("/api/v1/health")
                    else:
                        body = bodies[next(turn) % len(bodies)]
                        response = await client.post("/api/v1/search", content=body, headers=headers)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000.0)
                errors += response.status_code != 200

        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            started = time.perf_counter()
            await asyncio.gather(*(client_loop(client) for _ in range(clients)))
            elapsed = time.perf_counter() - started
        p50, p95, p99 = np.percentile(np.array(latencies or [0.0]), [50, 95, 99]).tolist()
        return LoadResult(scenario, clients, len(latencies), errors, elapsed, p50, p95, p99)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running `aeseek serve` process."""

    url: str
    pid: int


@contextmanager
def serve_process(
    data_dir: Path, batching: bool, index_kind: str = "Flat", source: Path | None = None, workers: int = 1
) -> Iterator[Server]:
    """`aeseek serve` on a free port (from `source`, another checkout of aeseek, when given)."""
    port = _free_port()
    env = {
        **os.environ,
        "AESEEK_DATA_DIR": str(data_dir),
        "AESEEK_BOOTSTRAP": "false",
        "AESEEK_JOBS_ENABLED": "false",
        "AESEEK_BATCHING": "true" if batching else "false",
        "AESEEK_INDEX_KIND": index_kind,
        "AESEEK_LOG_LEVEL": "warning",
    }
    if source is not None:
        env["PYTHONPATH"] = str(source)
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    if workers > 1 or source is None:  # a checkout older than --workers knows only one worker
        command += ["--workers", str(workers)]
    process = subprocess.Popen(
        command,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=source,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/api/v1/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}; try `aeseek serve` to see why")
            time.sleep(0.2)
        else:
            raise RuntimeError("the server did not become ready; is a model active? (aeseek serve once)")
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def scrape_metrics(url: str) -> dict[str, float]:
    """The server's counters that matter here, from its Prometheus text."""
    wanted = ("aeseek_search_stage_seconds_", "aeseek_search_batch_size_", "aeseek_request_seconds_")
    values: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(wanted) and ("_sum" in line or "_count" in line) and "_bucket" not in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def _thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds per thread of a process (Linux /proc; empty elsewhere): the main thread and the rest."""
    totals = {"event loop thread": 0.0, "other threads": 0.0}
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
            totals["event loop thread" if task.name == str(pid) else "other threads"] += seconds
    except (OSError, ValueError, IndexError):
        return {}
    return totals


def server_side(before: dict[str, float], after: dict[str, float], scenario: str) -> dict[str, Any]:
    """Per-request means (ms) of each stage and of the rest, from two scrapes of /metrics."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    route = '{method="GET",route="/api/v1/health"}' if scenario == HEALTH else '{method="POST",route="/api/v1/search"}'
    requests = delta(f"aeseek_request_seconds_count{route}")
    result: dict[str, Any] = {"server_request_ms": delta(f"aeseek_request_seconds_sum{route}") / max(requests, 1) * 1e3}
    stages: dict[str, float] = {}
    for name in after:
        if name.startswith("aeseek_search_stage_seconds_sum"):
            stage = name.split('"')[1]
            count = delta(f'aeseek_search_stage_seconds_count{{stage="{stage}"}}')
            if count:
                stages[stage] = delta(name) / count * 1e3
    result["stages_ms"] = stages
    batches = delta("aeseek_search_batch_size_count")
    if batches:
        result["mean_batch_size"] = delta("aeseek_search_batch_size_sum") / batches
    return result


def query_png(bench: Bench) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(bench.workspace.split("test").images[0]).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def _ivf_workspace(bench: Bench) -> Iterator[Path]:
    """A scratch data directory serving the active model over an IVF index (the real one is untouched)."""
    pointer = bench.workspace.active()
    if pointer is None:
        raise RuntimeError("no active model: run `aeseek serve` once (it trains one)")
    with tempfile.TemporaryDirectory(prefix="aeseek-bench-serve-") as scratch:
        root = Path(scratch)
        shutil.copytree(bench.workspace.models_dir / pointer.model_version, root / "models" / pointer.model_version)
        if (bench.workspace.root / "mnist").exists():
            (root / "mnist").symlink_to((bench.workspace.root / "mnist").resolve())
        scratch_workspace = Workspace(root, bench.workspace.mnist_source)
        spec = IndexSpec(kind="IVF", nlist=64, nprobe=8) if bench.quick else IVF_SPEC
        gallery = scratch_workspace.build_gallery(pointer.model_version, "train", spec=spec)
        scratch_workspace.activate(pointer.model_version, gallery)
        yield root


def run_serve(
    bench: Bench, seconds: float = 5.0, clients: tuple[int, ...] = CLIENTS, rounds: int = 3
) -> list[dict[str, Any]]:
    """Load each scenario at each concurrency, `rounds` times; write serve_matrix.json, .md and .png."""
    if bench.quick:
        seconds, clients, rounds = 1.0, (1, 4), 1
    body = multipart_body(query_png(bench))  # one 28x28 PNG (bench serve measures the realistic mix)
    all_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aeseek-load-") as workdir, ExitStack() as servers:
        load: WrkLoad | AsyncioLoad = WrkLoad(Path(workdir), [body]) if shutil.which("wrk") else AsyncioLoad([body])
        print(f"load generator: {load.name}", file=sys.stderr)
        # Every server runs from the start (idle ones cost nothing) so that, at each level of
        # concurrency, the scenarios are measured back to back: on a shared machine whose speed
        # drifts over minutes, the ratios compare like with like.
        root = bench.workspace.root
        scratch = servers.enter_context(_ivf_workspace(bench))
        flat, batched = (
            servers.enter_context(serve_process(root, False)),
            servers.enter_context(serve_process(root, True)),
        )
        ivf = servers.enter_context(serve_process(scratch, False, "IVF"))
        batched_ivf = servers.enter_context(serve_process(scratch, True, "IVF"))
        server_of = {HEALTH: flat, UNBATCHED: flat, BATCHED: batched, UNBATCHED_IVF: ivf, BATCHED_IVF: batched_ivf}
        for round_number in range(rounds):
            for level in clients:
                for scenario in SCENARIOS:
                    row = _measure(server_of[scenario], load, scenario, level, seconds)
                    all_rows.append({**row, "round": round_number})
    rows = median_rounds(all_rows)
    bench.write_json(
        "serve_matrix", {"load_generator": load.name, "rounds": rounds, "rows": rows, "all_rounds": all_rows}
    )
    bench.write_text("serve_matrix.md", _report(rows, load.name, rounds))
    curves = {}
    for scenario in SCENARIOS:
        chosen = [r for r in rows if r["scenario"] == scenario]
        curves[scenario] = ([float(r["clients"]) for r in chosen], [r["requests_per_s"] for r in chosen])
    bench.write_png(
        "serve_matrix.png",
        curves_png(curves, "Throughput on loopback", "concurrent clients", log_x=True, ylabel="requests/s"),
    )
    return rows


def median_rounds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario and concurrency, the round with the median throughput (all its figures kept together)."""
    chosen = []
    for scenario in dict.fromkeys(row["scenario"] for row in rows):  # in the order they were measured
        for clients in sorted({row["clients"] for row in rows}):
            rounds = sorted(
                (row for row in rows if row["scenario"] == scenario and row["clients"] == clients),
                key=lambda row: row["requests_per_s"],
            )
            if rounds:
                chosen.append(rounds[(len(rounds) - 1) // 2])
    return chosen


Load = WrkLoad | AsyncioLoad


def _measure(server: Server, load: Load, scenario: str, clients: int, seconds: float) -> dict[str, Any]:
    print(f"== {scenario}, {clients} clients", file=sys.stderr)
    load.run(server.url, scenario, clients, min(seconds, 1.0))  # warm-up
    before, cpu_before = scrape_metrics(server.url), _thread_cpu_seconds(server.pid)
    result = load.run(server.url, scenario, clients, seconds)
    after, cpu_after = scrape_metrics(server.url), _thread_cpu_seconds(server.pid)
    result.server = server_side(before, after, scenario)
    result.server["cpu_cores"] = {
        thread: (cpu_after[thread] - cpu_before[thread]) / result.seconds for thread in cpu_after
    }
    return result.row()


def _report(rows: list[dict[str, Any]], load_name: str, rounds: int) -> str:
    header = ["scenario", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "batch", "server CPU (cores)"]
    table_rows = [
        [
            r["scenario"], r["clients"], f"{r['requests_per_s']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
            f"{r['p99_ms']:.1f}", r["errors"], f"{r['mean_batch_size']:.1f}" if "mean_batch_size" in r else "",
            " + ".join(f"{cores:.2f}" for cores in r["cpu_cores"].values()),
        ]
        for r in rows
    ]  # fmt: skip
    stage_header = ["scenario", "clients", "server ms", "decode", "preprocess", "encode", "search", "queue"]
    stage_header += ["serialise", "rest (HTTP, routing, form)"]
    stage_rows = []
    for r in rows:
        if r["scenario"] == HEALTH or not r["stages_ms"]:
            continue
        stages = r["stages_ms"]
        names = ("decode", "preprocess", "encode", "search", "queue", "serialise")
        rest = r["server_request_ms"] - sum(stages.get(name, 0.0) for name in names)
        stage_rows.append(
            [r["scenario"], r["clients"], f"{r['server_request_ms']:.2f}"]
            + [f"{stages.get(name, 0.0):.2f}" for name in names]
            + [f"{rest:.2f}"]
        )
    return (
        summary_line(machine())
        + f"Load generator: {load_name}. Each row: the median-throughput one of {rounds} rounds; in each round, "
        "every scenario is measured back to back at each concurrency. Server CPU: event loop thread + "
        "other threads (batcher, torch, FAISS).\n\n"
        + markdown_table(header, table_rows)
        + _ratios(rows)
        + "\nWhere a search's time goes, per request, from the server's own clock (mean ms; encode and "
        "search are per batch, shared by every query in it; queue is the wait for a batch):\n\n"
        + markdown_table(stage_header, stage_rows)
    )


def _ratios(rows: list[dict[str, Any]]) -> str:
    def rps(scenario: str, clients: int) -> float | None:
        found = [r["requests_per_s"] for r in rows if r["scenario"] == scenario and r["clients"] == clients]
        return found[0] if found else None

    lines = []
    for clients in sorted({r["clients"] for r in rows}):
        health = rps(HEALTH, clients)
        for unbatched_scenario, batched_scenario in ((UNBATCHED, BATCHED), (UNBATCHED_IVF, BATCHED_IVF)):
            plain, batched = rps(unbatched_scenario, clients), rps(batched_scenario, clients)
            if health and plain and batched:
                lines.append(
                    f"- {clients} clients, {batched_scenario}: {batched / health:.0%} of health throughput, "
                    f"{batched / plain:.2f}x unbatched search (same index)"
                )
    return "\n" + "\n".join(lines) + "\n"
