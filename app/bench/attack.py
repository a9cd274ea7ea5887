"""`aeseek bench attack`: hostile requests and normal searches together, against a real server.

For `seconds`, on loopback: 4 clients search with a 28x28 digit (the normal user), a probe asks
/ready every 20 ms (what a healthcheck sees), and the attackers send what the hostile-input
issue found: multipart bodies of ~700k empty parts (10 MiB, the upload limit), 2048x2048 RGBA
PNGs, and batches of 32 of them. Reported per server: p50/p99 of normal searches and of /ready,
answers by kind (200, shed 503, other 4xx, 5xx, transport errors) and the server process's peak
resident memory. `--compare-with PATH` runs the same attack against `aeseek serve` from another
checkout (e.g. `git worktree add /tmp/before <commit>`), one server after the other.
Every client shares this machine's cores with the server, so the figures compare runs made
here, side by side; they are not a capacity rating.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageDraw

from app.bench.common import Bench, machine, markdown_table, summary_line
from app.bench.serve import BOUNDARY, multipart_body, query_png, serve_process

NORMAL_CLIENTS = 4
PROBE_INTERVAL_S = 0.02
FLOOD_BYTES = 10 * 1024 * 1024 - 4096


def large_png() -> bytes:
    """A 2048x2048 RGBA PNG: transparent, one dark stroke (27 KB on the wire, 16 MB of pixels)."""
    image = Image.new("RGBA", (2048, 2048), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(700, 400), (1300, 1600)], fill=(0, 0, 0, 255), width=90)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def flood_body() -> bytes:
    """A multipart body of empty parts up to the upload limit (boundary `x`)."""
    part = b"--x\r\nA:\r\n\r\n\r\n"
    return part * (FLOOD_BYTES // len(part)) + b"--x--\r\n"


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


async def _attack(url: str, seconds: float, query: bytes, large: bytes, flood: bytes) -> dict[str, Any]:
    stop_at = time.perf_counter() + seconds
    latencies: dict[str, list[float]] = {"search": [], "ready": []}
    answers: dict[str, Counter[str]] = {}
    search_form = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    requests = {
        "search": ("/api/v1/search", multipart_body(query), search_form),
        "flood": ("/api/v1/search", flood, {"content-type": "multipart/form-data; boundary=x"}),
        "large image": ("/api/v1/search", multipart_body(large), search_form),
        "batch of 32 large images": (
            "/api/v1/search/batch",
            b"".join(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{i}.png"\r\n'
                f"Content-Type: image/png\r\n\r\n".encode() + large + b"\r\n"
                for i in range(32)
            ) + f"--{BOUNDARY}--\r\n".encode(),
            search_form,
        ),
    }  # fmt: skip

    def count(kind: str, status: int | None) -> None:
        label = "transport error" if status is None else "5xx" if status >= 500 and status != 503 else str(status)
        answers.setdefault(kind, Counter())[label] += 1

    async def sender(client: httpx.AsyncClient, kind: str) -> None:
        path, body, headers = requests[kind]
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                response = await client.post(path, content=body, headers=headers)
            except httpx.HTTPError:
                count(kind, None)
                continue
            count(kind, response.status_code)
            if kind == "search" and response.status_code == 200:
                latencies["search"].append((time.perf_counter() - started) * 1000.0)

    async def probe(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                response = await client.get("/api/v1/ready")
                count("ready", response.status_code)
                latencies["ready"].append((time.perf_counter() - started) * 1000.0)
            except httpx.HTTPError:
                count("ready", None)
            await asyncio.sleep(PROBE_INTERVAL_S)

    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        tasks = [sender(client, "search") for _ in range(NORMAL_CLIENTS)]
        tasks += [sender(client, "flood") for _ in range(2)] + [sender(client, "large image") for _ in range(2)]
        tasks += [sender(client, "batch of 32 large images"), probe(client)]
        await asyncio.gather(*tasks)
    summary: dict[str, Any] = {"answers": {kind: dict(counter) for kind, counter in answers.items()}}
    for kind, values in latencies.items():
        p50, p99 = np.percentile(np.array(values or [float("nan")]), [50, 99]).tolist()
        summary[f"{kind}_p50_ms"], summary[f"{kind}_p99_ms"], summary[f"{kind}_count"] = p50, p99, len(values)
    return summary


def run_attack(bench: Bench, compare_with: Path | None = None) -> list[dict[str, Any]]:
    """Attack this code's server (and `compare_with`'s) and write attack.json and attack.md."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # thousands of requests: no line each
    seconds = 4.0 if bench.quick else 30.0
    query, large, flood = query_png(bench), large_png(), flood_body()
    servers: list[tuple[str, Path | None]] = [("this checkout", None)]
    if compare_with is not None:
        servers.append((f"compared: {compare_with}", compare_with))
    rows = []
    for name, source in servers:
        with serve_process(bench.workspace.root, batching=True, source=source) as server:
            row = {"server": name, "seconds": seconds, **asyncio.run(_attack(server.url, seconds, query, large, flood))}
            row["peak_memory_mb"] = peak_memory_mb(server.pid)
        rows.append(row)
    bench.write_json("attack", rows)
    bench.write_text("attack.md", summary_line(machine()) + _report(rows))
    return rows


def _report(rows: list[dict[str, Any]]) -> str:
    def fives(row: dict[str, Any]) -> int:
        return sum(counter.get("5xx", 0) + counter.get("transport error", 0) for counter in row["answers"].values())

    def shed(row: dict[str, Any]) -> int:
        return sum(counter.get("503", 0) for counter in row["answers"].values())

    table = markdown_table(
        ["server", "search p50 ms", "search p99 ms", "searches", "/ready p99 ms", "5xx + errors", "shed (503)",
         "peak memory MB"],
        [[row["server"], row["search_p50_ms"], row["search_p99_ms"], row["search_count"], row["ready_p99_ms"],
          fives(row), shed(row), row["peak_memory_mb"]] for row in rows],
    )  # fmt: skip
    answers = "\n".join(
        f"- {row['server']}: " + "; ".join(f"{kind} {dict(counts)}" for kind, counts in row["answers"].items())
        for row in rows
    )
    return (
        f"\n\n{table}\n\nAnswers by request kind:\n{answers}\n\n"
        "Reproduce: `aeseek bench attack [--compare-with PATH]` (see app/bench/attack.py for the mix).\n"
    )
