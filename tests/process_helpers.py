"""Process checks that look only at the processes a test started (never at the whole host,
where another user's or another test's sandboxed run may be going on)."""

from __future__ import annotations

import os
from pathlib import Path


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process now on the host."""
    out = {}
    for e in os.scandir("/proc"):
        if not e.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{e.name}/stat").read_text()
            out[int(e.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return out


def descendants(root: int) -> set[int]:
    """The processes now alive that descend from ``root`` (not ``root`` itself)."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def uid_of(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def live(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def processes_of_uids(uids) -> list[int]:
    """Live processes (not zombies) running as one of ``uids``: the uids this test's own
    sandboxed runs were given, which no other run holds while they live."""
    uids = set(uids)
    return [pid for pid in _parents() if uid_of(pid) in uids and live(pid)]
