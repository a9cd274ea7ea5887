"""Training across processes on this machine: `aeseek train --nproc N` and jobs with `nproc`.

`train_model` with nproc 1 is `Workspace.train`, unchanged. With more, it runs torchrun
(`python -m torch.distributed.run --standalone`, in a session of its own) over this module's
`main`: every rank trains its share of each epoch (models/training/distributed.py), rank 0 writes
the run's state and the model, and streams its progress back as JSON lines, which the caller gets
through `on_progress` as if it trained itself. The caller stops the run by ending that session;
the run directory keeps the last finished epoch, so the same call resumes it.

Across machines, start the ranks with torchrun yourself (`torchrun ... -m app.cli train`, see
docs/scaling.md): `train_as_rank` is what each of them runs.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from app.services.workspace import Workspace
from models.base import AutoencoderConfig
from models.checkpoints import ModelRecord
from models.errors import AeseekError, ErrorCode, InvalidRequestError
from models.progress import Progress, ProgressCallback, TrainingStopped
from models.registry import config_from_dict
from models.training.distributed import process_group

POLL_S = 0.05
STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 20
OWN_PACKAGES = ("models", "index", "app")  # errors of these are raised again as they were on the rank


class DistributedTrainingError(AeseekError):
    """A rank of a training across processes failed with an error that is not aeseek's own."""

    code = ErrorCode.INTERNAL_ERROR


def train_as_rank(
    workspace: Workspace,
    config: AutoencoderConfig,
    *,
    on_progress: ProgressCallback | None = None,
    run_name: str | None = None,
    max_steps: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[int, ModelRecord]:
    """In a process torchrun started: join its ranks, train, and return this rank and the saved model's record.

    Only rank 0 reports progress and checks `should_stop` (a stop there ends the run: torchrun stops
    the other ranks when one fails).
    """
    with process_group() as shard:
        record = workspace.train(
            config,
            on_progress=on_progress if shard.is_main else None,
            run_name=run_name,
            max_steps=max_steps,
            should_stop=should_stop if shard.is_main else None,
            shard=shard,
        )
        return shard.rank, record


def train_model(
    workspace: Workspace,
    config: AutoencoderConfig,
    nproc: int = 1,
    *,
    on_progress: ProgressCallback | None = None,
    run_name: str | None = None,
    max_steps: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    threads_per_process: int | None = None,
) -> ModelRecord:
    """Train and save a model in this process (nproc 1) or across `nproc` processes of this machine.

    `threads_per_process` defaults to the cores shared evenly (at least one each).
    """
    if nproc < 1:
        raise InvalidRequestError(f"nproc must be at least 1, got {nproc}")
    if nproc == 1:
        return workspace.train(
            config, on_progress=on_progress, run_name=run_name, max_steps=max_steps, should_stop=should_stop
        )
    threads = threads_per_process or max(1, (os.cpu_count() or 1) // nproc)
    with tempfile.TemporaryDirectory(prefix="aeseek-ranks-") as scratch:
        directory = Path(scratch)
        request = {
            "data_dir": str(workspace.root.resolve()),
            "mnist_source": workspace.mnist_source,
            "config": config.model_dump(mode="json"),
            "run_name": run_name,
            "max_steps": max_steps,
            "launcher_pid": os.getpid(),
        }
        (directory / "request.json").write_text(json.dumps(request))
        with open(directory / "ranks.log", "wb") as log:
            process = start_ranks(__name__, directory, nproc, threads, log)
            try:
                _follow(process, directory / "progress.jsonl", on_progress, should_stop)
            finally:
                stop_ranks(process)
        record_file = directory / "record.json"
        if process.returncode == 0 and record_file.is_file():
            return ModelRecord(**json.loads(record_file.read_text()))
        raise rank_failure(directory, process.returncode)


def start_ranks(module: str, directory: Path, nproc: int, threads: int, log: BinaryIO) -> subprocess.Popen[bytes]:
    """Run `python -m module directory` as `nproc` ranks under torchrun on this machine, output to `log`."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command += ["-m", module, str(directory)]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    # A session of its own: stopping it (killpg) stops torchrun and every rank, and a Ctrl-C in the
    # terminal reaches only this process, which then stops them.
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)


def _follow(
    process: subprocess.Popen[bytes],
    progress_file: Path,
    on_progress: ProgressCallback | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    """Pass rank 0's progress on until the ranks end; raise TrainingStopped when asked to stop."""
    offset, partial = 0, b""
    while True:
        finished = process.poll() is not None
        if progress_file.is_file():
            with open(progress_file, "rb") as stream:
                stream.seek(offset)
                chunk = stream.read()
            offset += len(chunk)
            *lines, partial = (partial + chunk).split(b"\n")
            for line in lines:
                if on_progress is not None:
                    on_progress(Progress(**json.loads(line)))
        if finished:
            return
        if should_stop is not None and should_stop():
            raise TrainingStopped("training was stopped on request")
        time.sleep(POLL_S)


def stop_ranks(process: subprocess.Popen[bytes]) -> None:
    """End torchrun and its ranks if they still run: SIGTERM to the session, then SIGKILL."""
    if process.poll() is not None:
        return
    for signum, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def rank_failure(directory: Path, returncode: int | None) -> AeseekError:
    """The error of the rank that failed first, as the aeseek error it raised when it is one."""
    errors = [json.loads(path.read_text()) for path in directory.glob("error-*.json")]
    if not errors:
        lines = (directory / "ranks.log").read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return DistributedTrainingError(
            f"the training processes exited with code {returncode} before saving a model; their last output:\n"
            + "\n".join(lines)
        )
    first = min(errors, key=lambda error: error["time"])
    try:
        kind = getattr(importlib.import_module(first["module"]), first["type"])
    except (ImportError, AttributeError):
        kind = None
    own = first["module"].split(".")[0] in OWN_PACKAGES
    if own and isinstance(kind, type) and issubclass(kind, AeseekError):
        return kind(first["message"])
    return DistributedTrainingError(f"rank {first['rank']} failed: {first['type']}: {first['message']}")


def _gone(pid: int) -> bool:
    """Whether process `pid` has ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def record_rank_error(directory: Path, rank: int, error: Exception) -> None:
    """Leave a rank's error where `rank_failure` finds it."""
    failure = {"time": time.time(), "rank": rank, "module": type(error).__module__, "type": type(error).__name__,
               "message": str(error)}  # fmt: skip
    (directory / f"error-{rank}.json").write_text(json.dumps(failure))


def main(directory: Path) -> int:
    """One rank of `train_model`'s torchrun: train as the request says; rank 0 writes progress and the record."""
    request: dict[str, Any] = json.loads((directory / "request.json").read_text())
    workspace = Workspace(Path(request["data_dir"]), request["mnist_source"])
    rank, launcher = int(os.environ.get("RANK", "0")), int(request["launcher_pid"])
    try:
        with open(directory / "progress.jsonl", "a") as progress:  # written by rank 0 only

            def report(step: Progress) -> None:
                progress.write(json.dumps(asdict(step)) + "\n")
                progress.flush()

            _, record = train_as_rank(
                workspace,
                config_from_dict(request["config"]),
                on_progress=report,
                run_name=request["run_name"],
                max_steps=request["max_steps"],
                should_stop=lambda: _gone(launcher),  # its caller was killed: nobody waits for this run
            )
    except Exception as error:
        record_rank_error(directory, rank, error)
        raise
    if rank == 0:
        (directory / "record.json").write_text(json.dumps(record.as_dict()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
