"""Run a real Milvus standalone server from the PyPI `milvus` package (embedded, no Docker) until stopped.

    python scripts/milvus-server.py BASE_DIR [PORT]

Prints `ready PORT` once the server answers; SIGTERM or SIGINT stops it. The test suite starts
one per session this way (tests/conftest.py), and developers can too.
"""

from __future__ import annotations

import signal
import sys
import threading


def main() -> int:
    """Start the server, report readiness, wait for a signal, stop it."""
    from milvus import default_server

    base_dir, port = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 19530
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    default_server.set_base_dir(base_dir)
    default_server.listen_port = port
    default_server.start()
    print(f"ready {default_server.listen_port}", flush=True)
    try:
        stopping.wait()
    finally:
        default_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
