"""Run a submitted scorer in an isolated process and talk to it over a pipe.

The harness keeps the model; the sandbox gets ids, texts and token statistics as data and
reaches any other capability through ``ProxyAccess`` (``child.py``), answered here by a
``CapabilityServer`` (metered) after refusing what the submission did not declare. The scorer's stdout and
stderr go to the job log. Every way a run can go wrong ends in ``SandboxError`` with one
clear line; nothing it returns is trusted before ``check_scores``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import MembenchError
from ..home import REPO_ROOT, home
from . import protocol
from .access import METHODS
from .isolation import NOBODY, Limits, isolate, limits_only

CHILD = Path(__file__).with_name("child.py")


# Errors that mean the scorer tried to leave the sandbox, by what the kernel said.
ESCAPES = {
    "[Errno 101]": ("tried to open a network connection (the sandbox has no network)",
                    "a scorer gets everything it may use as inputs; it cannot download anything"),
    "[Errno 30]": ("tried to write outside its working directory (read-only file system)",
                   "write scratch files only in the current directory"),
    "[Errno 13] Permission denied": ("tried to reach a file it may not",
                                     "the cache, the labels and the queue are hidden from scorers"),
    "[Errno 2] No such file or directory: '/": (
        "opened a path that does not exist inside the sandbox",
        "only its working directory, Python and the harness package exist there; labels never do"),
}


class SandboxError(MembenchError):
    """A submission failed in (or could not enter) the sandbox. ``kind`` names the fault."""

    def __init__(self, message: str, hint: str | None = None, kind: str = "error"):
        super().__init__(message, hint)
        self.kind = kind


@dataclass
class RunResult:
    scores: np.ndarray
    usage: dict
    used: list[str]  # capabilities the scorer actually called
    refused: list[str] = field(default_factory=list)  # undeclared calls the harness refused
    loaded: dict = field(default_factory=dict)  # class, name, version, requires
    seconds: float = 0.0
    sandboxed: bool = True


def _probe_in_child(fn) -> str | None:
    """Run ``fn`` in a forked child; None if it worked, else the error text."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        os.close(r)
        try:
            fn()
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001
            os.write(w, str(exc).encode()[:500])
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        msg = fh.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    return None if os.waitstatus_to_exitcode(status) == 0 else (msg or "unknown failure")


@lru_cache(maxsize=1)
def isolation_problem() -> str | None:
    """Why this machine cannot isolate a scorer (None when it can)."""
    workdir = tempfile.mkdtemp(prefix="membench-probe-")
    newroot = tempfile.mkdtemp(prefix="membench-root-")
    try:
        return _probe_in_child(lambda: isolate(workdir, (), Limits(), expose=python_paths(), newroot=newroot))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        os.rmdir(newroot)


def python_paths() -> tuple[str, ...]:
    """What the sandbox must be able to read: the interpreter and its libraries, and the
    harness package (for the interface and the wire format)."""
    real = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))
    package = str(Path(__file__).resolve().parent.parent)
    return tuple(dict.fromkeys([sys.base_prefix, sys.prefix, real, package]))


def _hidden_paths(extra=()) -> tuple[str, ...]:
    # The cache (suite with labels, features, queue), wherever MEMBENCH_HOME points, and the
    # repository's default cache, plus any extra paths the caller names.
    paths = [str(home().resolve()), str((REPO_ROOT / ".membench").resolve())]
    paths += [str(Path(p).resolve()) for p in extra]
    return tuple(dict.fromkeys(p for p in paths if os.path.isdir(p)))


def _prepare_workdir(submission_dir: Path) -> str:
    """A fresh temporary copy of the submission folder, owned by the sandbox user."""
    workdir = tempfile.mkdtemp(prefix="membench-sandbox-")
    for item in Path(submission_dir).iterdir():
        if item.is_symlink():
            continue
        target = Path(workdir) / item.name
        if item.is_dir():
            shutil.copytree(item, target, symlinks=False, ignore_dangling_symlinks=True)
        else:
            shutil.copy2(item, target)
    if os.getuid() == 0:
        for root, dirs, files in os.walk(workdir):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, NOBODY, NOBODY)
    return workdir


def _child_env(workdir: str) -> dict:
    keep = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return {
        **keep,
        "HOME": workdir,
        "TMPDIR": workdir,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _describe_exit(code: int, limits: Limits) -> tuple[str, str]:
    if code < 0:
        sig = signal.Signals(-code)
        if sig == signal.SIGXCPU:
            return "cpu", f"the scorer used more than its CPU-time limit ({limits.cpu_s} s) and was stopped"
        if sig == signal.SIGXFSZ:
            return "file_size", f"the scorer wrote a file past the {limits.fsize_mb} MiB file-size limit"
        if sig == signal.SIGKILL:
            return "killed", "the scorer process was killed (likely out of memory)"
        return "crash", f"the scorer process died with signal {sig.name}"
    return "crash", f"the scorer process exited (status {code}) without returning scores"


def _log_tail(log_path: Path, n: int = 5) -> str:
    try:
        lines = Path(log_path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def run_scorer(
    submission_dir: Path,
    *,
    uids: list[str],
    texts: list[str],
    features=None,
    params: dict | None = None,
    class_name: str | None = None,
    declared: tuple[str, ...] = ("features",),
    access=None,
    limits: Limits = Limits(),
    log_path: Path,
    allow_unsandboxed: bool = False,
    hidden=(),
) -> RunResult:
    """Score ``texts`` with the submission in a sandbox; raise ``SandboxError`` on any fault.

    ``access`` answers capability calls (a ``CapabilityServer``); calls to capabilities not in
    ``declared`` are refused before they reach it.
    """
    problem = isolation_problem()
    sandboxed = problem is None
    if not sandboxed and not allow_unsandboxed:
        raise SandboxError(
            f"this machine cannot isolate a scorer ({problem})",
            "run where user/mount/network namespaces are allowed, or pass --allow-unsandboxed "
            "(resource limits only: the scorer could reach the network and the labels)",
            kind="no_sandbox",
        )
    workdir = _prepare_workdir(submission_dir)
    newroot = None
    parent_sock, child_sock = socket.socketpair()
    hidden_paths = _hidden_paths(hidden)
    if sandboxed:
        newroot = tempfile.mkdtemp(prefix="membench-root-")
        preexec = lambda: isolate(workdir, hidden_paths, limits, expose=python_paths(), newroot=newroot)  # noqa: E731
    else:
        preexec = lambda: limits_only(limits)  # noqa: E731
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    deadline = start + limits.wall_s
    used, refused, loaded = [], [], {}
    with open(log_path, "ab") as log:
        log.write(f"--- sandbox run ({'isolated' if sandboxed else 'UNSANDBOXED'}) ---\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-s", "-P", "-u", "-B", str(CHILD), str(child_sock.fileno())],
                cwd=workdir,
                env=_child_env(workdir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(child_sock.fileno(),),
                preexec_fn=preexec,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            child_sock.close()
            parent_sock.close()
            shutil.rmtree(workdir, ignore_errors=True)
            if newroot:
                os.rmdir(newroot)
            raise SandboxError(f"could not start the sandboxed process ({exc})", kind="no_sandbox") from None
    child_sock.close()
    fd = parent_sock.fileno()
    try:
        header = {
            "op": "init",
            "class": class_name,
            "params": params or {},
            "uids": list(uids),
            "texts": list(texts),
            "has_features": features is not None,
            "access": access is not None or any(c != "features" for c in declared),
        }
        arrays = protocol.stats_to_arrays(features, "f_") if features is not None else {}
        try:
            protocol.send(fd, header, arrays)
        except OSError:
            pass  # the child died at start; reported below from its exit status
        while True:
            try:
                msg, data = protocol.recv(fd, deadline)
            except protocol.Timeout:
                raise SandboxError(
                    f"the scorer ran past the wall-clock timeout ({limits.wall_s:g} s) and was stopped",
                    "make it faster, or score fewer texts per call",
                    kind="timeout",
                ) from None
            except (protocol.ProtocolError, OSError) as exc:
                try:
                    code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    code = None
                if code is None:
                    raise SandboxError(f"the scorer broke the harness protocol ({exc})", kind="protocol") from None
                kind, text = _describe_exit(code, limits)
                tail = _log_tail(log_path)
                raise SandboxError(text + (f"; log: {tail}" if tail else ""), kind=kind) from None
            op = msg.get("op")
            if op == "loaded":
                loaded = {k: msg.get(k) for k in ("class", "name", "version", "requires")}
            elif op == "call":
                method = str(msg.get("method"))
                kwargs = msg.get("kwargs") or {}
                cap = METHODS.get(method, "?")
                if method not in METHODS or (cap is not None and cap not in declared):
                    refused.append(cap if method in METHODS else method)
                    what = f"capability '{cap}'" if method in METHODS else f"unknown method '{method}'"
                    protocol.send(fd, {"ok": False, "error": f"{what} was not declared in submission.yaml"})
                elif access is None:
                    protocol.send(fd, {"ok": False, "error": f"'{method}' needs model access, which this run has not"})
                else:
                    if cap is not None and cap not in used:
                        used.append(cap)
                    try:
                        reply, out = access.serve(method, kwargs)
                    except MembenchError as exc:
                        protocol.send(fd, {"ok": False, "error": str(exc), "usage": access.usage})
                    else:
                        protocol.send(fd, {"ok": True, "usage": access.usage, **reply}, out)
            elif op == "error":
                stage = msg.get("stage")
                etype, emsg = msg.get("type", "Error"), msg.get("message", "")
                if msg.get("kind") == "memory":
                    raise SandboxError(
                        f"the scorer ran out of memory (limit {limits.memory_mb} MiB of address space)",
                        "use less memory, or raise --memory-mb",
                        kind="memory",
                    )
                if stage == "import":
                    last = msg.get("traceback", "").strip().splitlines()[-1:]
                    raise SandboxError(
                        f"scorer.py could not be imported: {etype}: {emsg}",
                        "; ".join(last) if etype == "SyntaxError" else "fix scorer.py and validate again",
                        kind="import",
                    )
                if etype == "BlockingIOError" and ("fork" in msg.get("traceback", "")
                                                   or "temporarily unavailable" in emsg):
                    raise SandboxError(
                        f"the scorer tried to start more processes than allowed (limit {limits.nproc}): {emsg}",
                        "score in one process",
                        kind="processes",
                    )
                for marker, (what, hint) in ESCAPES.items():
                    if marker in emsg:
                        raise SandboxError(f"the scorer {what}: {etype}: {emsg}", hint, kind="escape")
                if stage == "output":
                    raise SandboxError(f"the scorer returned the wrong type: {emsg}", kind="output")
                raise SandboxError(
                    f"the scorer raised {etype} while {'loading' if stage == 'load' else 'scoring'}: {emsg}",
                    "see the job log for the traceback",
                    kind="exception",
                )
            elif op == "result":
                scores = data.get("scores")
                return RunResult(
                    scores=scores,
                    usage=dict(access.usage) if access is not None else {},
                    used=used,
                    refused=refused,
                    loaded=loaded,
                    seconds=time.monotonic() - start,
                    sandboxed=sandboxed,
                )
            else:
                raise SandboxError(f"the scorer sent an unknown message {op!r}", kind="protocol")
    finally:
        parent_sock.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        shutil.rmtree(workdir, ignore_errors=True)
        if newroot:
            os.rmdir(newroot)  # an empty mount point: the mounts lived in the child's namespace


def check_scores(scores, n: int, n_scored_tokens=None) -> np.ndarray:
    """The output check before any metric: one finite float per sample.

    NaN is accepted only for a sample with no scored tokens (when features are given), the same
    rule as for built-in scorers; anything else non-finite is an error.
    """
    if scores is None or not isinstance(scores, np.ndarray):
        raise SandboxError("the scorer returned no score array", kind="output")
    if scores.ndim != 1 or len(scores) != n:
        raise SandboxError(
            f"the scorer returned shape {tuple(scores.shape)}, expected ({n},): one score per sample",
            kind="length",
        )
    scores = scores.astype(np.float64)
    bad = ~np.isfinite(scores)
    if n_scored_tokens is not None:
        bad &= ~(np.isnan(scores) & (np.asarray(n_scored_tokens) == 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SandboxError(
            f"the scorer returned {int(bad.sum())} non-finite score(s) (first: {float(scores[i])} at index {i})",
            "return a finite float for every sample; higher = more likely member",
            kind="non_finite",
        )
    return scores
