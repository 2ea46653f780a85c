"""One cgroup per sandbox run: memory and process limits for the run as a whole.

cgroup v2 where its memory and pids controllers are available to us (``memory.max``,
``memory.swap.max = 0``, ``pids.max``, ``cgroup.kill``), v1 otherwise (``memory`` and ``pids``
hierarchies: ``memory.limit_in_bytes`` and, where swap is accounted, the same
``memory.memsw.limit_in_bytes``; ``pids.max``). The run's cgroup is created below the
harness's own cgroup (v2: or below the hierarchy's root when ours cannot delegate), named
``membench-run-<pid>-<n>`` so that ``sweep`` can remove what a killed harness left behind.

Memory counts everything the run's processes charge: their pages, the page cache and the
run's tmpfs (its scratch disk). The harness puts the sandbox's first two processes in the
cgroup before the scorer starts (``bwrap --block-fd``), so every later process and thread is
born inside it.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

from ...home import process_alive

PREFIX = "membench-run-"
_counter = itertools.count()


class CgroupUnavailable(Exception):
    pass


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of every cgroup mount."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fstype, _, opts = (right.split(" ") + ["", "", ""])[:3]
        if fstype in ("cgroup", "cgroup2"):
            out.append((left.split()[4], fstype, set(opts.split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    out = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in (controllers.split(",") if controllers else [""]):
            out[c] = path
    return out


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


class RunCgroup:
    """The cgroup(s) of one run; ``dirs`` holds one folder (v2) or one per controller (v1)."""

    def __init__(self, version: int, dirs: list[Path]):
        self.version, self.dirs = version, dirs

    # -- creation ----------------------------------------------------------------------
    @classmethod
    def create(cls, memory_bytes: int, pids: int) -> "RunCgroup":
        name = f"{PREFIX}{os.getpid()}-{next(_counter)}"
        v2 = _v2_parent()
        if v2 is not None:
            d = v2 / name
            d.mkdir()
            group = cls(2, [d])
            try:
                _write(d / "memory.max", str(memory_bytes))
                if (d / "memory.swap.max").exists():
                    _write(d / "memory.swap.max", "0")
                _write(d / "pids.max", str(pids))
            except OSError as exc:
                group.remove()
                raise CgroupUnavailable(f"cannot set limits in {d} ({exc.strerror})") from None
            return group
        memory, pid_dir = _v1_parents()
        dirs = []
        try:
            for parent in (memory, pid_dir):
                (parent / name).mkdir()
                dirs.append(parent / name)
            group = cls(1, dirs)
            _write(dirs[0] / "memory.limit_in_bytes", str(memory_bytes))
            if (dirs[0] / "memory.memsw.limit_in_bytes").exists():  # no swapping out of the limit
                _write(dirs[0] / "memory.memsw.limit_in_bytes", str(memory_bytes))
            _write(dirs[1] / "pids.max", str(pids))
        except OSError as exc:
            cls(1, dirs).remove()
            raise CgroupUnavailable(f"cannot create a v1 memory/pids cgroup ({exc.strerror})") from None
        return group

    # -- use ---------------------------------------------------------------------------
    def add(self, pid: int) -> None:
        for d in self.dirs:
            _write(d / "cgroup.procs", str(pid))

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs:
            try:
                out |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return out

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the run's cgroup, until none is left (or ``timeout``)."""
        if self.version == 2 and (self.dirs[0] / "cgroup.kill").exists():
            try:
                _write(self.dirs[0] / "cgroup.kill", "1")
            except OSError:
                pass
        end = time.monotonic() + timeout
        while (left := self.pids()) and time.monotonic() < end:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed a process of this cgroup."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            fields = dict(line.split()[:2] for line in (self.dirs[0] / name).read_text().splitlines())
            return int(fields.get("oom_kill", 0)) > 0
        except (OSError, ValueError):
            return False

    def peak_memory(self) -> int | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((self.dirs[0] / name).read_text())
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        self.kill(timeout=2.0)
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still busy for a moment after the last process exits
                    time.sleep(0.02)


def _v2_parent() -> Path | None:
    """Where a run's v2 cgroup can go (memory and pids delegated there), or None."""
    mounts = [m for m, t, _ in _mounts() if t == "cgroup2"]
    if not mounts:
        return None
    root = Path(mounts[0])
    try:
        if not {"memory", "pids"} <= set((root / "cgroup.controllers").read_text().split()):
            return None  # the controllers are bound to v1 hierarchies (hybrid setup)
        own = root / _own_paths().get("", "/").lstrip("/")
    except OSError:
        return None
    for parent in dict.fromkeys([own, root]):
        try:
            enabled = set((parent / "cgroup.subtree_control").read_text().split())
            if not {"memory", "pids"} <= enabled:
                _write(parent / "cgroup.subtree_control", "+memory +pids")
            if os.access(parent, os.W_OK):
                return parent
        except OSError:
            continue
    return None


def _v1_parents() -> tuple[Path, Path]:
    own = _own_paths()
    found = {}
    for point, fstype, opts in _mounts():
        if fstype == "cgroup":
            for c in ("memory", "pids"):
                if c in opts:
                    found[c] = Path(point) / own.get(c, "/").lstrip("/")
    missing = [c for c in ("memory", "pids") if c not in found]
    if missing:
        raise CgroupUnavailable(f"no cgroup v2 with memory+pids, and no v1 {' or '.join(missing)} hierarchy")
    for c, path in found.items():
        if not os.access(path, os.W_OK):
            raise CgroupUnavailable(f"the {c} cgroup {path} is not writable (run the worker as root, "
                                    "or delegate a cgroup to it)")
    return found["memory"], found["pids"]


def problem() -> str | None:
    """Why a per-run cgroup cannot be made here (None when it can)."""
    try:
        RunCgroup.create(64 << 20, 8).remove()
    except CgroupUnavailable as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot create a cgroup ({exc.strerror})"
    return None


def sweep() -> int:
    """Remove the run cgroups a killed harness left (their processes killed first)."""
    removed = 0
    parents = []
    v2 = _v2_parent()
    if v2 is not None:
        parents.append((2, [v2]))
    else:
        try:
            parents.append((1, list(_v1_parents())))
        except CgroupUnavailable:
            pass
    for version, dirs in parents:
        for parent in dirs:
            for d in parent.glob(PREFIX + "*"):
                pid = d.name[len(PREFIX):].split("-")[0]
                if pid.isdigit() and process_alive(int(pid)):
                    continue
                RunCgroup(version, [d]).remove()
                removed += not d.exists()
    return removed
