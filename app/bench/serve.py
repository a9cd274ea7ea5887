"""`aeseek bench serve`: a bounded loopback load against a real uvicorn server.

For each of 1, 8, 32 and 64 concurrent clients (a fixed number of seconds each, then it
stops), it measures requests/s and p50/p95/p99 latency of: the health endpoint (the HTTP
stack's own ceiling), search with micro-batching off, and search with it on. The server runs
in its own process (`aeseek serve` on the active model); the load comes from asyncio clients
in this process, on the same 2 cores, which is what a loopback benchmark on this machine is.
Where the time goes comes from the server's own Server-Timing headers (decode, preprocess,
encode, search, queue); the rest of the latency is HTTP, multipart parsing and JSON.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from PIL import Image

from app.bench.common import Bench, machine, markdown_table, summary_line
from app.pictures import curves_png

CLIENTS = (1, 8, 32, 64)


@dataclass
class LoadResult:
    """What one endpoint did under one level of concurrency."""

    scenario: str
    clients: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    stages_ms: dict[str, float]

    def row(self) -> dict[str, Any]:
        """Summary numbers."""
        latencies = np.array(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {
            "scenario": self.scenario,
            "clients": self.clients,
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_s": self.requests / self.seconds,
            "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)),
            "p99_ms": float(np.percentile(latencies, 99)),
            "stages_ms": self.stages_ms,
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(data_dir: str, batching: bool):  # type: ignore[no-untyped-def]
    port = _free_port()
    env = {
        **os.environ,
        "AESEEK_DATA_DIR": data_dir,
        "AESEEK_BOOTSTRAP": "false",
        "AESEEK_JOBS_ENABLED": "false",
        "AESEEK_BATCHING": "true" if batching else "false",
        "AESEEK_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/api/v1/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("the server did not become ready; is a model active? (aeseek serve once)")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


async def _load(url: str, scenario: str, clients: int, seconds: float, query: bytes) -> LoadResult:
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                if scenario == "health":
                    response = await client.get("/api/v1/health")
                else:
                    response = await client.post("/api/v1/search", files={"file": ("q.png", query, "image/png")})
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000.0)
            if response.status_code != 200:
                errors += 1
            timing = response.headers.get("server-timing")
            if timing:
                for part in timing.split(", "):
                    stage, _, duration = part.partition(";dur=")
                    stages.setdefault(stage, []).append(float(duration))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    mean_stages = {stage: float(np.mean(values)) for stage, values in stages.items()}
    return LoadResult(scenario, clients, len(latencies), errors, elapsed, latencies, mean_stages)


def _query_png(bench: Bench) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(bench.workspace.split("test").images[0]).save(buffer, format="PNG")
    return buffer.getvalue()


def run_serve(bench: Bench, seconds: float = 5.0, clients: tuple[int, ...] = CLIENTS) -> list[dict[str, Any]]:
    """Load each scenario at each concurrency; write serve.json, serve.md and serve.png."""
    if bench.quick:
        seconds, clients = 1.0, (1, 4)
    query = _query_png(bench)
    rows: list[dict[str, Any]] = []
    for batching, scenarios in ((False, ("health", "search, unbatched")), (True, ("search, batched",))):
        with _server(str(bench.workspace.root), batching) as url:
            for scenario in scenarios:
                for level in clients:
                    print(f"== {scenario}, {level} clients", file=sys.stderr)
                    asyncio.run(_load(url, scenario, 1, 0.5, query))  # warm-up
                    rows.append(asyncio.run(_load(url, scenario, level, seconds, query)).row())
    bench.write_json("serve", rows)
    header = ["scenario", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "server stages (mean ms)"]
    table_rows = [
        [
            r["scenario"], r["clients"], f"{r['requests_per_s']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
            f"{r['p99_ms']:.1f}", r["errors"],
            ", ".join(f"{stage} {ms:.2f}" for stage, ms in r["stages_ms"].items()),
        ]
        for r in rows
    ]  # fmt: skip
    ratios = _ratios(rows)
    bench.write_text("serve.md", summary_line(machine()) + markdown_table(header, table_rows) + ratios)
    curves = {}
    for scenario in ("health", "search, unbatched", "search, batched"):
        chosen = [r for r in rows if r["scenario"] == scenario]
        curves[scenario] = ([float(r["clients"]) for r in chosen], [r["requests_per_s"] for r in chosen])
    bench.write_png(
        "serve.png", curves_png(curves, "Throughput on loopback", "concurrent clients", log_x=True, ylabel="requests/s")
    )
    return rows


def _ratios(rows: list[dict[str, Any]]) -> str:
    def rps(scenario: str, clients: int) -> float | None:
        found = [r["requests_per_s"] for r in rows if r["scenario"] == scenario and r["clients"] == clients]
        return found[0] if found else None

    lines = []
    for clients in sorted({r["clients"] for r in rows}):
        health, plain, batched = (
            rps("health", clients),
            rps("search, unbatched", clients),
            rps("search, batched", clients),
        )
        if health and plain and batched:
            lines.append(
                f"- {clients} clients: batched search = {batched / health:.0%} of health throughput, "
                f"{batched / plain:.2f}x unbatched search"
            )
    return "\n" + "\n".join(lines) + "\n"
