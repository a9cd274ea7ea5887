"""What aeseek may delete, and when: nothing accumulates until the disk is full.

`collect` finds (and, unless asked for a dry run, deletes) what no one can use any more:
galleries that no activation names (left by a crash between a write and its pointer switch,
or replaced long ago), temporary files of killed writes, finished job records older than the
retention and the resumable training states of jobs that need none, expired idempotency
records. Models are deleted only on request (DELETE /api/v1/models/{version}), never here.
`aeseek gc` runs it; the service runs it at every start.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from app.services.idempotency import IdempotencyStore
from app.services.jobs.store import FINISHED, JobStore
from app.services.workspace import Workspace
from index.gallery import read_manifest
from models.errors import AeseekError

# A gallery directory this young may be one a running server is still writing.
GRACE_S = 600.0


@dataclass(frozen=True)
class Removal:
    """One thing deleted (or, in a dry run, to be deleted), why, and the bytes it held."""

    path: Path
    why: str
    size: int


def size_of(path: Path) -> int:
    """Bytes held by a file or a directory tree (links not followed)."""
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(child.lstat().st_size for child in path.rglob("*") if child.is_file() and not child.is_symlink())


def collect(workspace: Workspace, retention_s: float, dry_run: bool = False, now: float | None = None) -> list[Removal]:
    """Find what can go, delete it unless `dry_run`, and return it."""
    now = time.time() if now is None else now
    found = [Removal(path, "temporary file of a killed write", size_of(path)) for path in _temporary(workspace, now)]
    found += _unreferenced_galleries(workspace, now)
    found += _old_jobs(workspace, retention_s, now)
    if not dry_run:
        for removal in found:
            if removal.path.is_dir():
                shutil.rmtree(removal.path, ignore_errors=True)
            else:
                removal.path.unlink(missing_ok=True)
        IdempotencyStore(workspace.root / "idempotency").prune()
    return found


def _temporary(workspace: Workspace, now: float) -> list[Path]:
    return [p for p in workspace.root.rglob(".*.tmp") if p.is_file() and now - p.stat().st_mtime > 60.0]


def _unreferenced_galleries(workspace: Workspace, now: float) -> list[Removal]:
    """Galleries no activation names that are partial, of a deleted model, or not their model's newest."""
    if not workspace.galleries_dir.is_dir():
        return []
    named = set(workspace.pointed_galleries())
    newest: dict[tuple[str, str], tuple[float, Path]] = {}
    candidates: list[tuple[Path, str]] = []
    for directory in sorted(workspace.galleries_dir.iterdir()):
        if not directory.is_dir() or directory.resolve() in named or now - directory.stat().st_mtime <= GRACE_S:
            continue
        try:
            manifest = read_manifest(directory)
        except AeseekError:
            candidates.append((directory, "partial gallery (a write killed before its manifest)"))
            continue
        if not (workspace.models_dir / manifest.model_version).is_dir():
            candidates.append((directory, "gallery of a deleted model"))
            continue
        group = (manifest.model_version, manifest.gallery)
        if group in newest:
            older = min(newest[group], (manifest.created, directory))
            candidates.append((older[1], "an older gallery of the same model"))
        newest[group] = max(newest.get(group, (manifest.created, directory)), (manifest.created, directory))
    return [Removal(directory, why, size_of(directory)) for directory, why in candidates]


def _old_jobs(workspace: Workspace, retention_s: float, now: float) -> list[Removal]:
    store = JobStore(workspace.root / "jobs")
    records = {record.id: record for record in store.all()}
    found = []
    for record in records.values():
        ended = record.finished or record.created
        if record.state in FINISHED and now - ended > retention_s:
            found.append(Removal(store.path(record.id), f"{record.state} job older than the retention", 0))
    for run in sorted(workspace.runs_dir.glob("job-*")) if workspace.runs_dir.is_dir() else []:
        job = records.get(run.name.removeprefix("job-"))
        if job is None or job.state == "succeeded" or any(r.path == store.path(job.id) for r in found):
            found.append(Removal(run, "training state no job can resume", size_of(run)))
    return found
