"""Where membench keeps what it builds: MEMBENCH_HOME (default ~/.cache/membench).

This module decides every path: each kind of thing has one function here, and no other
module joins a folder name onto MEMBENCH_HOME itself.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The cache root; created on first use."""
    root = Path(os.environ.get("MEMBENCH_HOME") or Path.home() / ".cache" / "membench")
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(*parts: str) -> Path:
    path = home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


# The folders under MEMBENCH_HOME, one function each (created on first use).
def results_dir() -> Path:
    """Default results folder of `run`, `evaluate`, `diagnose`, `demo`, the worker, the site
    builder and the server."""
    return subdir("results")


def diagnostics_dir() -> Path:
    """Diagnostics JSON of every diagnosed split, whatever results folder it was written for."""
    return subdir("diagnostics")


def diagnostics_file(split_id: str, results_dir: str | Path | None = None) -> Path:
    """A split's diagnostics JSON: ``MEMBENCH_HOME/diagnostics/<split id>.json`` (the latest
    diagnosis of the split, whatever results folder it was made for), or with ``results_dir``
    the copy published beside that folder's records, ``<results_dir>/_diagnostics/<split id>.json``.
    Not created. Readers look in the results folder first, then in MEMBENCH_HOME."""
    base = Path(results_dir) / "_diagnostics" if results_dir is not None else diagnostics_dir()
    *folders, name = split_id.split("/")
    return base.joinpath(*folders, name + ".json")  # not with_suffix: ids such as ngram_13_0.8 hold dots


def features_dir(key: str) -> Path:
    return subdir("features", key[:2], key)


def targets_dir(target_id: str) -> Path:
    """Folder of a target membench builds itself (demo targets, fine-tuned targets)."""
    return subdir("targets", *target_id.split("/"))


def queue_dir() -> Path:
    return subdir("queue")


def logs_dir(*parts: str) -> Path:
    return subdir("logs", *parts)


def registry_dir(kind: str) -> Path:
    """Entries registered at run time (``benchmark.registered``)."""
    return subdir("registry", kind)


def secrets_dir() -> Path:
    """Secret membership assignments of private splits (seeds, label files): under
    MEMBENCH_HOME, never in the repository, never visible to a sandboxed scorer; mode 0700."""
    path = subdir("secrets")
    path.chmod(0o700)
    return path


def secret_file(key: str) -> Path:
    """The file holding one secret (e.g. a private split's assignment seed), by key."""
    return secrets_dir() / key.replace("/", "__")


def scratch_dir(*parts: str) -> Path:
    """Short-lived working folders (a sandbox run's view and snapshot); whatever a killed
    process leaves here is swept by the next worker."""
    return subdir("scratch", *parts)


def cache_dir(name: str) -> Path:
    """Small derived caches (e.g. DC-PDD's token-frequency tables under ``freq``)."""
    return subdir(name)


# Folders in the repository (published results and the generated site).
SITE_ROOT = REPO_ROOT / "leaderboard_site"
PUBLISHED_RESULTS = SITE_ROOT / "results"
BUILD_DIR = SITE_ROOT / "build"  # default output of every command that builds the site


@contextmanager
def locked(name: str):
    """An exclusive inter-process lock under MEMBENCH_HOME/locks (for builds two processes
    might start at once, such as the demo target)."""
    path = subdir("locks") / (name.replace("/", "__") + ".lock")
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one owned by another user counts as alive): for folders
    and markers named after the process that made them (staging folders, a server's marker)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def portable(path: str | Path) -> str:
    """``path`` with MEMBENCH_HOME written as ``$MEMBENCH_HOME``, so published records do not
    carry one machine's directory layout; other paths are returned as they are."""
    path = Path(path).resolve()
    try:
        return "$MEMBENCH_HOME/" + path.relative_to(home().resolve()).as_posix()
    except ValueError:
        return str(path)


def from_portable(text: str) -> str:
    """The inverse of ``portable``: ``$MEMBENCH_HOME/...`` as a path under this machine's home."""
    prefix = "$MEMBENCH_HOME/"
    return str(home() / text[len(prefix):]) if str(text).startswith(prefix) else str(text)
