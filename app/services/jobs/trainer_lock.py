"""The trainer lock: one process per data directory runs training jobs.

An exclusive `flock` on `<data>/jobs/.trainer.lock`. Whoever holds it (a serving process with
AESEEK_RUN_TRAINER on, or `aeseek worker`) is the trainer; the kernel releases it when its
holder exits or dies, so another process can take over. It holds across containers that share
the volume on one host, and across hosts on a filesystem that honours `flock` (NFSv4 does).
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import BinaryIO

LOCK_NAME = ".trainer.lock"


class TrainerLock:
    """The exclusive lock that names the one trainer of a jobs directory."""

    def __init__(self, jobs_directory: Path) -> None:
        self.path = jobs_directory / LOCK_NAME
        self._handle: BinaryIO | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._handle is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this object holds it afterwards."""
        if self._handle is not None:
            return True
        handle = open(self.path, "a+b")  # noqa: SIM115 (held until release, or for the process's life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        """Give the lock up (closing the file releases the flock)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
