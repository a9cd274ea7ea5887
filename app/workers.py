"""`aeseek serve --workers N`: N server processes, each listening on its own SO_REUSEPORT socket.

Uvicorn's own `--workers` shares one listening socket among its processes, and the event loop
that wakes first accepts every connection then waiting (the loop accepts until the queue is
empty): a load of 32 keep-alive connections landed 27/5 on two workers (measured with `ss`
under `aeseek bench serve`'s load), one process saturated and the other mostly idle. Here each
worker binds its own socket to the port with SO_REUSEPORT and the kernel spreads new
connections over the listening sockets by a hash of their addresses, so every worker gets its
share. The supervisor holds the port (bound, not listening, so it takes no connections),
replaces a worker that dies or hangs (its event loop stamps a shared heartbeat ten times a
second; one silent for `hang_after_s` is killed and replaced), and passes SIGTERM/SIGINT on to
the workers. It also gives the workers a fresh directory for their metrics (prometheus_client's
multiprocess mode, see app/services/observability.py), removed when it stops, so that `/metrics`
sums all workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

# prometheus_client reads it when a worker imports it (spawned workers import afresh).
from app.services.observability import MULTIPROCESS_DIR

logger = logging.getLogger("aeseek.workers")

APP_FACTORY = "app.main:create_worker_app"
# Uvicorn exits with this when the app or its socket cannot start: restarting would fail the same way.
STARTUP_FAILURE = 3
# A worker that dies this soon after its start, this many times in a row, is failing to start.
EARLY_DEATH_S = 10.0
EARLY_DEATHS_TO_GIVE_UP = 3
POLL_S = 0.5
# A poll this late means the supervisor was not running (SIGSTOP, a paused container): no hang is judged on it.
RESUMED_AFTER_S = 5.0
STOP_GRACE_S = 30.0


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _serve_one(options: dict[str, Any], heartbeat: Any) -> None:
    """One worker process: its own listening socket on the shared port, then uvicorn until signalled."""
    import uvicorn

    class HeartbeatServer(uvicorn.Server):
        """Uvicorn's server, stamping `heartbeat` on each tick of its main loop (every 0.1 s, once started)."""

        async def on_tick(self, counter: int) -> bool:
            heartbeat.value = time.monotonic()  # the same clock in every process
            return await super().on_tick(counter)

    config = uvicorn.Config(APP_FACTORY, factory=True, **options)
    sock = reuse_port_socket(config.host, config.port)
    sock.listen(config.backlog)
    HeartbeatServer(config).run(sockets=[sock])


@dataclass
class _Worker:
    process: BaseProcess
    started: float
    heartbeat: Any  # a shared double its event loop stamps on each tick; 0 until its server has started
    last_beat: float = 0.0
    silent_since: float = 0.0  # the supervisor's clock when the beat last changed


class Supervisor:
    """Starts `workers` server processes on one port and keeps that many running until told to stop."""

    def __init__(self, options: dict[str, Any], workers: int, hang_after_s: float = 30.0) -> None:
        self.options = options
        self.workers = workers
        self.hang_after_s = hang_after_s
        self._context = multiprocessing.get_context("spawn")  # fresh interpreters: no torch threads forked
        self._stop = threading.Event()
        self._processes: list[_Worker] = []

    def _start(self) -> _Worker:
        heartbeat = self._context.Value("d", 0.0, lock=False)
        process = self._context.Process(target=_serve_one, args=(self.options, heartbeat), name="aeseek-serve")
        process.start()
        logger.info("started server worker %s", process.pid)
        now = time.monotonic()
        return _Worker(process, now, heartbeat, silent_since=now)

    def _hung(self, worker: _Worker, now: float) -> bool:
        """Started serving, then its event loop fell silent for `hang_after_s` of the supervisor's own
        watching; it is killed here. (A start that hangs is not caught: its beat is still 0.)"""
        beat = worker.heartbeat.value
        if beat != worker.last_beat:
            worker.last_beat, worker.silent_since = beat, now
            return False
        if beat == 0.0 or now - worker.silent_since < self.hang_after_s:
            return False
        logger.error("server worker %s has not ticked for %.0f s: killing it", worker.process.pid, self.hang_after_s)
        worker.process.kill()
        worker.process.join()
        return True

    def stop(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        """Ask the supervisor to stop its workers and return (a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 then, or 1 when workers keep failing to start."""
        # Holding the port bound (not listening) fails fast when another program has it, and keeps
        # it ours while a worker is replaced. Only listening sockets are handed connections.
        holder = reuse_port_socket(self.options["host"], self.options["port"])
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.stop)
        # Fresh for each run: counts left by an earlier run would be added to this one's.
        metrics_dir = tempfile.mkdtemp(prefix="aeseek-metrics-")
        earlier_metrics_dir = os.environ.get(MULTIPROCESS_DIR)
        os.environ[MULTIPROCESS_DIR] = metrics_dir
        early_deaths, status = 0, 0
        try:
            self._processes = [self._start() for _ in range(self.workers)]
            polled = time.monotonic()
            while not self._stop.wait(POLL_S):
                now = time.monotonic()
                if now - polled > RESUMED_AFTER_S:  # the supervisor itself stood still (a paused container)
                    for worker in self._processes:
                        worker.silent_since = now  # so did its workers: their silence is not theirs
                polled = now
                for slot, worker in enumerate(self._processes):
                    if self._stop.is_set():
                        break
                    process = worker.process
                    if process.is_alive() and not self._hung(worker, now):
                        continue
                    lived = time.monotonic() - worker.started
                    early_deaths = early_deaths + 1 if lived < EARLY_DEATH_S else 0
                    logger.error("server worker %s exited with %s after %.1f s", process.pid, process.exitcode, lived)
                    if process.exitcode == STARTUP_FAILURE or early_deaths >= EARLY_DEATHS_TO_GIVE_UP:
                        logger.error("server workers fail to start; stopping (run `aeseek serve` to see why)")
                        status = 1
                        self._stop.set()
                        break
                    if not self._stop.is_set():  # no replacement once told to stop
                        self._processes[slot] = self._start()
        finally:
            self._stop_all()
            holder.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)
            if earlier_metrics_dir is None:
                os.environ.pop(MULTIPROCESS_DIR, None)
            else:
                os.environ[MULTIPROCESS_DIR] = earlier_metrics_dir
        return status

    def _stop_all(self) -> None:
        for worker in self._processes:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self._processes:
            process = worker.process
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def serve_workers(options: dict[str, Any], workers: int, hang_after_s: float = 30.0) -> int:
    """Run `workers` server processes sharing (host, port) through SO_REUSEPORT; returns the exit status."""
    return Supervisor(options, workers, hang_after_s).run()
