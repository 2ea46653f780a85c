"""Which built site a running `membench serve` is serving, so a build can say so.

`membench serve` leaves a small marker file in the site folder it serves (its pid, host,
address and results folder) and removes it when it stops; the builder carries the marker
over when it replaces the folder. A marker whose process is gone, or that was left on another
host, is stale and ignored. The app never serves dot-files, so the marker is not public.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from ..home import process_alive

MARKER = ".membench-serving.json"


def served_by(site_dir: Path) -> dict | None:
    """The live server serving ``site_dir`` ({pid, url, results, host}), or None."""
    path = Path(site_dir) / MARKER
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("host") != socket.gethostname():
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or not process_alive(pid):
        return None
    return info


def mark_served(site_dir: Path, *, url: str, results_dir: Path) -> Path:
    path = Path(site_dir) / MARKER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(), "url": url, "results": str(Path(results_dir).resolve()),
    }))
    return path


def unmark_served(site_dir: Path) -> None:
    path = Path(site_dir) / MARKER
    try:
        info = json.loads(path.read_text())
        if info.get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass
