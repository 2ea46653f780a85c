"""Where membench keeps what it builds: MEMBENCH_HOME (default ~/.cache/membench)."""

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


def portable(path: str | Path) -> str:
    """``path`` with MEMBENCH_HOME written as ``$MEMBENCH_HOME``, so published records do not
    carry one machine's directory layout; other paths are returned as they are."""
    path = Path(path).resolve()
    try:
        return "$MEMBENCH_HOME/" + path.relative_to(home().resolve()).as_posix()
    except ValueError:
        return str(path)
