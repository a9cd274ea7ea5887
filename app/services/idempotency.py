"""Idempotency keys: a retried mutating request answers the first one's result instead of repeating it.

A record per (caller, key) lives in <data>/idempotency/ as one JSON file, written atomically:
while the first request runs it is `running` (a second one with the key gets 409 and retries),
then it holds the status, headers and body that were answered. A request that reuses a key
for a different method, path or body is refused: that is a client bug, not a retry. Records
expire after a day; a `running` mark left by a killed process (no one holds its lock) is
cleared at start.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.errors import ConflictError, InvalidRequestError
from models.storage import atomic_write_json

TTL_S = 24 * 3600.0
MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class StoredResponse:
    """What the first request with a key was answered."""

    status: int
    headers: list[tuple[str, str]]
    body: str


def fingerprint(method: str, path: str, query: bytes, content_type: bytes, body: bytes) -> str:
    """A digest of everything that makes a request the same request.

    A multipart boundary is chosen at random by most clients on every send, a retry included:
    it is replaced by a fixed one first, so the same form is the same request.
    """
    boundary = re.search(rb"boundary=\"?([^\";]+)", content_type)
    if boundary is not None:
        body = body.replace(b"--" + boundary.group(1), b"--boundary")
        content_type = content_type.replace(boundary.group(1), b"boundary")
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, content_type, body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


class IdempotencyStore:
    """The records of one data directory."""

    def __init__(self, directory: Path, ttl_s: float = TTL_S) -> None:
        self.directory = directory
        self.ttl_s = ttl_s
        self._held: dict[Path, int] = {}  # running marks this process holds the lock of
        directory.mkdir(parents=True, exist_ok=True)

    def _paths(self, caller: str, key: str) -> tuple[Path, Path]:
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidRequestError(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
        name = hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest()
        return self.directory / f"{name}.json", self.directory / f"{name}.running"

    def claim(self, caller: str, key: str, request: str) -> StoredResponse | None:
        """The stored answer for this key, or None after marking the key as running for this request."""
        record_path, running_path = self._paths(caller, key)
        record = self._read(record_path)
        if record is not None:
            if record["request"] != request:
                raise InvalidRequestError("this Idempotency-Key was used for a different request; use a new key")
            return StoredResponse(record["status"], [tuple(pair) for pair in record["headers"]], record["body"])
        try:
            descriptor = os.open(running_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise ConflictError("a request with this Idempotency-Key is still running; retry shortly") from None
        # The run holds a lock on its mark until it ends: the lock dies with the process, so a mark
        # nobody holds was left by a crash (PIDs are no proof: in a container every restart is PID 1).
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        self._held[running_path] = descriptor
        return None

    def complete(self, caller: str, key: str, request: str, response: StoredResponse) -> None:
        """Store the answer of a finished request; later requests with the key get it."""
        record_path, running_path = self._paths(caller, key)
        atomic_write_json(record_path, {"request": request, "created": time.time(), **asdict(response)})
        self._drop(running_path)

    def release(self, caller: str, key: str) -> None:
        """Forget a request that failed on the server's side: a retry with the key does the work again."""
        self._drop(self._paths(caller, key)[1])

    def _drop(self, running_path: Path) -> None:
        running_path.unlink(missing_ok=True)
        descriptor = self._held.pop(running_path, None)
        if descriptor is not None:
            os.close(descriptor)  # releases the lock

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if time.time() - float(record.get("created", 0.0)) > self.ttl_s:
            path.unlink(missing_ok=True)
            return None
        return record

    def prune(self, running_too: bool = False) -> int:
        """Delete expired records (and, at start, `running` marks that processes no longer running left)."""
        removed = 0
        for path in self.directory.glob("*.json"):
            if self._read(path) is None and not path.exists():
                removed += 1
        if running_too:
            for path in self.directory.glob("*.running"):
                if path not in self._held and not _held_by_anyone(path):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


def _held_by_anyone(mark: Path) -> bool:
    """Whether a running request (in any process) holds the lock of a `running` mark."""
    try:
        descriptor = os.open(mark, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False
