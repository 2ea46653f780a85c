"""The jail: how a submitted scorer is isolated. Nothing outside this package knows how.

Public face: ``Limits``, ``Jail`` (one run), ``missing`` (which pieces this machine lacks),
``sweep`` (what a killed harness left behind), ``PIECES``.

A run is ``python child.py`` inside bubblewrap (``bwrap``, the sandbox Flatpak is built on),
started as a uid of its own (``uids``), with:

- new user, PID, IPC, UTS, network and cgroup namespaces (``--unshare-all``), a fresh
  ``/proc`` that shows only the run's own processes, no user namespaces inside
  (``--disable-userns``), ``--die-with-parent`` and ``--new-session`` (no terminal to write
  into), no new privileges and no capabilities;
- a root holding only what ``view`` describes, read-only (bwrap's own root and ``/dev`` tmpfs
  remounted read-only too), and one writable folder, ``/tmp``, a tmpfs of ``disk_mb`` (the
  run's whole disk);
- the seccomp filter of ``seccomp`` (``AF_UNIX`` sockets only; threads but no processes);
- a cgroup of its own (``cgroup``) limiting memory (``memory_mb`` + the tmpfs) and the number
  of tasks (``nproc``) for the run as a whole, and killed as a whole at the end;
- per-process rlimits as a second line (address space, CPU seconds, open files, file size,
  processes of its uid; no core files), set by ``child.py`` before any submitted code runs.

Where a piece is missing, ``missing()`` says which and why; callers refuse to run unless
told ``--allow-unsandboxed``, in which case the run gets every piece that is there (no
``bwrap`` at all: a plain process with the rlimits only).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ...home import scratch_dir
from . import cgroup, launch, seccomp, uids, view

PIECES = ("bwrap", "seccomp", "cgroup", "distinct uid")
JAIL_UID = 1000  # the scorer's uid as it sees it (mapped to the run's own host uid)
SUBMISSION = "/submission"
WORK = "/tmp"


@dataclass(frozen=True)
class Limits:
    """Per-run limits. ``memory_mb`` and ``nproc`` hold for the run as a whole (cgroup; also
    per process as rlimits); ``disk_mb`` is the size of its only writable folder."""

    memory_mb: int = 2048
    disk_mb: int = 256
    cpu_s: int = 300
    wall_s: float = 600.0
    nproc: int = 64
    nofile: int = 128
    fsize_mb: int = 64
    log_kb: int = 256  # of the scorer's own output kept in the job log, per run

    def rlimits(self) -> dict:
        return {"as": self.memory_mb << 20, "cpu": self.cpu_s, "nproc": self.nproc,
                "nofile": self.nofile, "fsize": self.fsize_mb << 20}


def _bwrap() -> str | None:
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.path.exists(p)), None)


class _Binds:
    """Where bwrap takes each folder from. Run by root, bwrap runs as the run's own uid,
    which may not be able to walk to a folder (a Python under /root): ``launch.py`` then
    stages each folder at ``launch.STAGE/<n>`` first. Otherwise bwrap binds the host path."""

    def __init__(self, staged: bool):
        self.staged = staged
        self.sources: list[str] = []

    def __call__(self, path: str) -> str:
        if not self.staged:
            return path
        self.sources.append(path)
        return f"{launch.STAGE}/{len(self.sources) - 1}"


def _system_args(src: _Binds) -> list[str]:
    """bwrap arguments for the system folders and the Python installation, read-only."""
    args = []
    for path in view.SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]  # world-readable everywhere: no staging needed
    home = str(view.python_home())
    if not any(home == s or home.startswith(s + "/") for s in view.SYSTEM):
        args += ["--ro-bind", src(home), home]
    for hidden in view.hidden_in_python():
        args += ["--tmpfs", hidden, "--remount-ro", hidden]
    return args


def _launch(bwrap_args: list[str], command: list[str], src: _Binds, uid: int | None, pass_fds, **popen):
    """Start ``bwrap ARGS -- COMMAND``: through ``launch.py`` as ``uid`` when given (we are
    root), else directly."""
    argv = [_bwrap(), *bwrap_args, "--", *command]
    env = {"PATH": "/usr/bin:/bin"}
    if uid is None:
        return subprocess.Popen(argv, pass_fds=pass_fds, env=env, **popen)
    config = {"uid": uid, "sources": src.sources, "argv": argv, "env": env}
    return subprocess.Popen([view.python_binary(), "-S", "-s", "-B", "-E", str(Path(launch.__file__)),
                             json.dumps(config)], pass_fds=pass_fds, env=env, **popen)


def _bwrap_problem() -> str | None:
    """Start Python in a minimal sandbox the way a real run does (as a uid of its own when
    we are root)."""
    if _bwrap() is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    root = os.geteuid() == 0
    src = _Binds(staged=root)
    args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
            *_system_args(src), "--proc", "/proc", "--dev", "/dev"]
    with uids.UidLease() as uid:
        proc = _launch(args, [view.python_binary(), "-S", "-c", "pass"], src, uid if root else None, (),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip().splitlines()
        return f"bwrap cannot build a sandbox here ({(text[-1] if text else proc.returncode)!s:.200})"
    return None


@lru_cache(maxsize=1)
def missing() -> tuple[str, ...]:
    """The pieces of the jail this machine lacks, each with the reason ("" pieces: all there)."""
    out = []
    for piece, probe in (("bwrap", _bwrap_problem), ("seccomp", seccomp.problem),
                         ("cgroup", cgroup.problem), ("distinct uid", uids.problem)):
        try:
            why = probe()
        except Exception as exc:  # noqa: BLE001  (a probe that breaks means the piece is missing)
            why = f"{type(exc).__name__}: {exc}"
        if why:
            out.append(f"{piece}: {why}")
    return tuple(out)


def _piece_ok(piece: str) -> bool:
    return not any(m.startswith(piece + ":") for m in missing())


def sweep() -> dict:
    """Remove scratch folders and cgroups of runs whose harness process is gone."""
    from ..folder import sweep_dead

    return {"scratch": sweep_dead(scratch_dir("sandbox")), "cgroups": cgroup.sweep()}


def _env(work: str) -> dict:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work, "TMPDIR": work,
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class JailError(Exception):
    """The jail could not be set up for this run (the message says which piece failed)."""


class Jail:
    """One run: copy the submission to ``snapshot`` (it is mounted read-only at
    ``/submission``), ``start`` the child, ``kill`` it, ``close`` everything (always; also on
    errors). Use as a context manager. Its folders live under ``scratch_dir("sandbox")`` in
    ``run-<harness pid>-<random>``, so ``sweep`` can remove what a killed harness left."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.scratch = scratch_dir("sandbox") / f"run-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.scratch.mkdir(mode=0o700)
        self.snapshot = self.scratch / "submission"
        self.proc: subprocess.Popen | None = None
        self.cgroup: cgroup.RunCgroup | None = None
        self.uid_lease: uids.UidLease | None = None
        self.uid: int | None = None
        self.sandboxed = not missing()
        # without bwrap, the rest has nothing to hold: a plain process with rlimits only
        self.pieces = [p for p in PIECES if _piece_ok(p)] if _piece_ok("bwrap") else []
        self.work: str | None = None
        self._fds: list[int] = []

    def __enter__(self) -> "Jail":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- starting ----------------------------------------------------------------------
    def start(self, sock_fd: int, config: dict) -> subprocess.Popen:
        """Start ``child.py SOCK_FD CONFIG`` in the jail; stdout and stderr come back through
        one pipe (``proc.stdout``)."""
        view_dir = view.shared_view(scratch_dir("sandbox"))
        config = {**config, "rlimits": self.limits.rlimits()}
        if "bwrap" not in self.pieces:
            return self._start_plain(view_dir, sock_fd, config)
        uid = None
        try:
            if "cgroup" in self.pieces:
                self.cgroup = cgroup.RunCgroup.create(((self.limits.memory_mb + self.limits.disk_mb) << 20),
                                                      self.limits.nproc + 4)
            if "distinct uid" in self.pieces:
                self.uid_lease = uids.UidLease()
                self.uid = uid = self.uid_lease.__enter__()
        except (cgroup.CgroupUnavailable, uids.NoUid, OSError) as exc:
            raise JailError(f"a piece of the jail failed for this run: {exc}") from None
        config = {**config, "paths": [view.JAIL_ROOT + "/lib", view.SITE], "submission": SUBMISSION}
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        src = _Binds(staged=uid is not None)
        args = self._bwrap_args(view_dir, src, info_w, block_r)
        command = [view.python_binary(), "-s", "-S", "-B", "-u", "-P", view.JAIL_ROOT + "/child.py", str(sock_fd),
                   json.dumps(config)]
        try:
            self.proc = _launch(args, command, src, uid, (sock_fd, info_w, block_r, *self._fds),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        finally:
            for fd in (info_w, block_r, *self._fds):
                os.close(fd)
            self._fds = []
        try:
            info = _read_info(info_r, timeout=30)
            if self.cgroup is not None:
                self.cgroup.add(self.proc.pid)
                self.cgroup.add(int(info["child-pid"]))
            os.write(block_w, b"go")  # only now may the scorer's side run
        except (OSError, ValueError, KeyError) as exc:
            self.kill()
            raise JailError(f"the sandbox did not start ({_tail(self.proc)}; {exc})") from None
        finally:
            os.close(info_r)
            os.close(block_w)
        return self.proc

    def _bwrap_args(self, view_dir: Path, src: _Binds, info_fd: int, block_fd: int) -> list[str]:
        args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
                "--uid", str(JAIL_UID), "--gid", str(JAIL_UID), "--hostname", "sandbox", "--clearenv"]
        for k, v in _env(WORK).items():
            args += ["--setenv", k, v]
        args += _system_args(src)
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "0700", "--size", str(self.limits.disk_mb << 20), "--tmpfs", WORK,
                 "--ro-bind", src(str(view_dir)), view.JAIL_ROOT]
        for host, inside in view.interface_entries():
            args += ["--ro-bind", src(host), inside]
        for host, name in view.site_entries():
            args += ["--ro-bind", src(host), f"{view.SITE}/{name}"]
        args += ["--ro-bind", src(str(self.snapshot)), SUBMISSION, "--chdir", WORK,
                 "--remount-ro", "/dev", "--remount-ro", "/"]  # bwrap's own root and /dev are writable tmpfs
        if "seccomp" in self.pieces:
            fd = seccomp.program_fd()
            self._fds.append(fd)
            args += ["--seccomp", str(fd)]
        args += ["--info-fd", str(info_fd), "--block-fd", str(block_fd)]
        return args

    def _start_plain(self, view_dir: Path, sock_fd: int, config: dict) -> subprocess.Popen:
        """--allow-unsandboxed without bwrap: a plain process with the rlimits, nothing more (the
        interface is imported from the harness's own package folder)."""
        self.work = tempfile.mkdtemp(prefix="work-", dir=self.scratch)
        paths = [str(view.PACKAGE_ROOT), *dict.fromkeys(str(Path(h).parent) for h, _ in view.site_entries())]
        config = {**config, "paths": paths, "submission": str(self.snapshot)}
        env = _env(self.work)
        self.proc = subprocess.Popen(
            [view.python_binary(), "-s", "-S", "-B", "-u", "-P", str(view_dir / "child.py"), str(sock_fd),
             json.dumps({**config, "rlimits": {**config["rlimits"], "nproc": None}})],
            cwd=self.work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(sock_fd,), start_new_session=True,
        )
        return self.proc

    # -- ending ------------------------------------------------------------------------
    def kill(self) -> None:
        """Kill every process of the run (any thread may call this, e.g. the watchdog)."""
        if self.cgroup is not None:
            self.cgroup.kill(timeout=2.0)
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def oom_killed(self) -> bool:
        return self.cgroup is not None and self.cgroup.oom_killed()

    def peak_memory(self) -> int | None:
        return self.cgroup.peak_memory() if self.cgroup is not None else None

    def close(self) -> None:
        try:
            self.kill()
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                if self.proc.stdout is not None:
                    self.proc.stdout.close()
            if self.cgroup is not None:
                self.cgroup.remove()
            if self.uid is not None:
                _reap_uid(self.uid)
        finally:
            for fd in self._fds:
                os.close(fd)
            self._fds = []
            if self.uid_lease is not None:
                self.uid_lease.__exit__(None, None, None)
            shutil.rmtree(self.scratch, ignore_errors=True)

    def describe(self) -> dict:
        return {"isolated": self.sandboxed, "pieces": self.pieces, "missing": list(missing()),
                "limits": asdict(self.limits)}


def _read_info(fd: int, timeout: float) -> dict:
    import select

    buf, end = b"", time.monotonic() + timeout
    while True:
        try:
            return json.loads(buf)
        except ValueError:
            pass
        left = end - time.monotonic()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if left <= 0 or not poller.poll(left * 1000):
            raise OSError("no word from bwrap")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise OSError("bwrap exited before the sandbox was ready")
        buf += chunk


def _tail(proc) -> str:
    if proc is None:
        return "not started"
    code = proc.poll()
    return f"bwrap exit status {code}" if code is not None else "bwrap still running"


def _reap_uid(uid: int) -> None:
    """Belt and braces: no process of the run's uid outlives it (there should be none)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass


__all__ = ["PIECES", "Jail", "JailError", "Limits", "missing", "sweep"]
