"""The idempotency store: one run per (caller, key), stored answers, expiry, marks left by a crash."""

import subprocess
import sys
from pathlib import Path

import pytest

from app.services.idempotency import IdempotencyStore, StoredResponse, fingerprint
from models.errors import ConflictError, InvalidRequestError

ANSWER = StoredResponse(201, [("content-type", "application/json")], '{"ok": true}')


def test_a_key_runs_once_then_answers_what_it_answered(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path)
    assert store.claim("alice", "k1", "request-a") is None  # first: run it
    with pytest.raises(ConflictError, match="still running"):
        store.claim("alice", "k1", "request-a")
    assert store.claim("bob", "k1", "request-a") is None  # keys are per caller
    store.complete("alice", "k1", "request-a", ANSWER)
    assert store.claim("alice", "k1", "request-a") == ANSWER
    with pytest.raises(InvalidRequestError, match="different request"):
        store.claim("alice", "k1", "request-b")


def test_server_errors_are_forgotten_and_crash_marks_cleared(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path)
    store.claim("alice", "k", "r")
    store.release("alice", "k")  # the run failed on the server's side: a retry runs again
    assert store.claim("alice", "k", "r") is None
    assert IdempotencyStore(tmp_path).prune(running_too=True) == 0  # this process runs it: kept
    # A process that claims a key and dies (SIGKILL, OOM) leaves its mark, but not its lock.
    crash = "from pathlib import Path; import os, sys; from app.services.idempotency import IdempotencyStore; "
    crash += "IdempotencyStore(Path(sys.argv[1])).claim('bob', 'k', 'r'); os._exit(1)"
    subprocess.run([sys.executable, "-c", crash, str(tmp_path)], check=False)
    with pytest.raises(ConflictError):
        store.claim("bob", "k", "r")  # until a start clears it
    assert IdempotencyStore(tmp_path).prune(running_too=True) == 1
    assert store.claim("bob", "k", "r") is None


def test_records_expire(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path, ttl_s=0.0)
    store.claim("alice", "k", "r")
    store.complete("alice", "k", "r", ANSWER)
    assert store.claim("alice", "k", "r") is None  # expired: a new run
    with pytest.raises(InvalidRequestError):
        store.claim("alice", "x" * 200, "r")


def test_a_form_is_the_same_request_whatever_its_boundary() -> None:
    def form(boundary: bytes, label: bytes) -> tuple[bytes, bytes]:
        body = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="labels"\r\n\r\n' + label + b"\r\n"
        return b"multipart/form-data; boundary=" + boundary, body + b"--" + boundary + b"--\r\n"

    first, second, other = form(b"aaaa", b"5"), form(b"bbbb", b"5"), form(b"cccc", b"6")
    same = fingerprint("POST", "/api/v1/gallery", b"", *first)
    assert same == fingerprint("POST", "/api/v1/gallery", b"", *second)
    assert same != fingerprint("POST", "/api/v1/gallery", b"", *other)
    assert same != fingerprint("POST", "/api/v1/train", b"", *first)
