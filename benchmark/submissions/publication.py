"""Publication as one transaction: a record is published only after its pages were built.

``transaction(results_dir, write, hook)`` copies the published results folder to a staging
folder beside it, lets ``write`` put the new records there, runs ``hook`` on the staging folder
and the files written (the worker's publish hook: the publication gate on them, then the site
build), and only when all of that succeeded copies what changed into the published folder. Any
failure on the way (a view that cannot be drawn, a site that does not build, an exception of any
kind) leaves the published folder and the site as they were; the staging folder is removed
either way (one a killed worker leaves is swept by the next transaction).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from ..home import process_alive

PREFIX = ".publishing-"


def _sweep(parent: Path, name: str) -> None:
    for p in parent.glob(f".{name}{PREFIX}*"):
        pid = p.name[len(f".{name}{PREFIX}"):].partition("-")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _files(root: Path) -> set[str]:
    out = set()
    for dirpath, _, filenames in os.walk(root):
        for fn in filenames:
            out.add(os.path.relpath(os.path.join(dirpath, fn), root))
    return out


def _commit(staging: Path, results_dir: Path, before: set[str]) -> None:
    """Copy new and changed files of ``staging`` into ``results_dir`` (each atomically; records
    last, so none names a score file not yet there), then remove the files the staging run
    removed (only files that were there when it started)."""
    after = _files(staging)
    changed = [rel for rel in after
               if not (results_dir / rel).is_file() or not filecmp.cmp(staging / rel, results_dir / rel, shallow=False)]
    for rel in sorted(changed, key=lambda r: (r.endswith(".json"), r)):
        dest = results_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copy2(staging / rel, tmp)
        os.replace(tmp, dest)
    for rel in sorted(before - after):
        (results_dir / rel).unlink(missing_ok=True)


def transaction(results_dir: Path, write: Callable[[Path], list], hook: Callable[[Path, list], object] | None = None
                ) -> list[Path]:
    """Publish what ``write(folder)`` writes into ``folder`` (returning the record files it wrote)
    once ``hook(folder, written)`` succeeded; return their paths in ``results_dir``."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    _sweep(results_dir.parent, results_dir.name)
    staging = results_dir.with_name(f".{results_dir.name}{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(results_dir, staging, symlinks=True)
        before = _files(staging)
        written = [Path(p) for p in write(staging)]
        if hook is not None:
            hook(staging, written)
        _commit(staging, results_dir, before)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [results_dir / p.resolve().relative_to(staging.resolve()) for p in written]
