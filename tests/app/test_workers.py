"""`aeseek serve --workers N`: worker processes with their own SO_REUSEPORT sockets, under a supervisor."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.workers import reuse_port_socket
from tests.helpers import free_port, until


def test_workers_can_bind_one_port_and_other_programs_cannot() -> None:
    port = free_port()
    first, second = reuse_port_socket("127.0.0.1", port), reuse_port_socket("127.0.0.1", port)
    try:
        plain = socket.socket()
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))  # the port is taken for anyone without SO_REUSEPORT
        plain.close()
    finally:
        first.close()
        second.close()


def test_a_port_held_without_reuse_port_is_refused() -> None:
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        with pytest.raises(OSError):
            reuse_port_socket("127.0.0.1", plain.getsockname()[1])


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def _serving_workers(pid: int, port: int) -> list[int]:
    """The children of `pid` with a socket listening on `port`."""
    return [child for child in _children(pid) if _sockets_on(child, port, state="0A")]


def _sockets_on(pid: int, port: int, state: str) -> int:
    """How many of `pid`'s sockets have local port `port` in TCP `state` (0A listening, 01 established)."""
    try:
        inodes = {
            os.readlink(fd).removeprefix("socket:[").removesuffix("]") for fd in Path(f"/proc/{pid}/fd").iterdir()
        }
    except OSError:
        return 0
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state and fields[9] in inodes:
                count += 1
    return count


@pytest.mark.slow
def test_workers_share_connections_are_replaced_when_they_die_and_stop_with_the_supervisor(
    trained_copy: Path,
) -> None:
    port = free_port()
    env = {**os.environ, "AESEEK_DATA_DIR": str(trained_copy), "AESEEK_BOOTSTRAP": "false",
           "AESEEK_MNIST_SOURCE": "idx", "AESEEK_JOBS_ENABLED": "false", "AESEEK_LOG_LEVEL": "warning"}  # fmt: skip
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)], env=env
    )
    url = f"http://127.0.0.1:{port}/api/v1/ready"
    try:
        until(lambda: len(_serving_workers(supervisor.pid, port)) == 2, seconds=120)
        first, second = _serving_workers(supervisor.pid, port)
        metrics_dir = _environment(first)["PROMETHEUS_MULTIPROC_DIR"]
        assert _environment(second)["PROMETHEUS_MULTIPROC_DIR"] == metrics_dir
        # 32 keep-alive connections, as a load test opens them: each worker gets a share, not one all.
        clients = [httpx.Client(timeout=30) for _ in range(32)]
        try:
            until(lambda: all(_answers(client, url) for client in clients), seconds=120)
            held = [_sockets_on(worker, port, state="01") for worker in (first, second)]
            assert sum(held) == 32 and min(held) >= 4, held
        finally:
            for client in clients:
                client.close()
        # Each request and scrape on a new connection, so they land on both workers: every scrape sums both.
        fresh = httpx.Limits(max_keepalive_connections=0)
        health = f"http://127.0.0.1:{port}/api/v1/health"
        with httpx.Client(timeout=30, limits=fresh) as client:
            assert all(client.get(health).status_code == 200 for _ in range(24))
            series = 'aeseek_requests_total{method="GET",route="/api/v1/health",status="200"} 24.0'
            assert all(series in client.get(f"http://127.0.0.1:{port}/metrics").text for _ in range(6))
        os.kill(first, signal.SIGKILL)
        until(
            lambda: (
                first not in _serving_workers(supervisor.pid, port) and len(_serving_workers(supervisor.pid, port)) == 2
            ),
            seconds=120,
        )
        with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            assert all(client.get(url).status_code == 200 for _ in range(8))  # no connection lands on the dead one
        workers = _serving_workers(supervisor.pid, port)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
    assert not any(Path(f"/proc/{worker}").exists() for worker in workers)
    assert not Path(metrics_dir).exists()  # removed with the supervisor


def _environment(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


@pytest.mark.slow
def test_a_hung_worker_is_killed_and_replaced(trained_copy: Path) -> None:
    port = free_port()
    env = {**os.environ, "AESEEK_DATA_DIR": str(trained_copy), "AESEEK_BOOTSTRAP": "false",
           "AESEEK_MNIST_SOURCE": "idx", "AESEEK_JOBS_ENABLED": "false", "AESEEK_LOG_LEVEL": "warning",
           "AESEEK_SERVE_WORKER_HANG_S": "3"}  # fmt: skip
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)], env=env
    )
    try:
        until(lambda: len(_serving_workers(supervisor.pid, port)) == 2, seconds=120)
        hung, other = _serving_workers(supervisor.pid, port)
        time.sleep(4)  # longer than the limit: workers that tick are left alone
        assert sorted(_serving_workers(supervisor.pid, port)) == sorted([hung, other])
        os.kill(hung, signal.SIGSTOP)  # alive, its socket open, its event loop silent
        until(lambda: not Path(f"/proc/{hung}").exists(), seconds=60)
        until(lambda: len(_serving_workers(supervisor.pid, port)) == 2, seconds=120)
        assert other in _serving_workers(supervisor.pid, port)
        with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            assert all(client.get(f"http://127.0.0.1:{port}/api/v1/ready").status_code == 200 for _ in range(8))
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.TransportError:
        return False
