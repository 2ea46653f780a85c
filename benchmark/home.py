"""Where membench keeps what it builds: MEMBENCH_HOME (default ~/.cache/membench)."""

from __future__ import annotations

import os
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
