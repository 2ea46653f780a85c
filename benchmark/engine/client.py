"""The engine's client side: start, stop and ask the server; hand a `membench run` to it."""

from __future__ import annotations

import os
import sys
import time

from ..home import engine_dir
from .protocol import (DEFAULT_IDLE_MINUTES, SERVED, EngineError, _connect, _lines, _send, ask, command_of,
                       differences, fingerprint, socket_path, switched_off)


START_TIMEOUT_S = 300


def ping() -> dict | None:
    """The running engine's state (pid, served, running, started, preload_s, fingerprint), or None."""
    try:
        return ask("ping")
    except (EngineError, OSError, ValueError):
        return None


def start(idle_minutes: float = DEFAULT_IDLE_MINUTES, env: dict | None = None) -> dict:
    """Start an engine for this MEMBENCH_HOME in this environment (or ``env``: the one its
    clients will have) and return when it listens: ``{"pid", "started": True, "seconds",
    "log"}``, or ``{"pid", "started": False}`` when one with the same fingerprint already runs.
    One with another fingerprint is an error."""
    import subprocess

    from ..errors import MembenchError

    info = ping()
    if info is not None:
        diff = differences(info["fingerprint"], fingerprint(env))
        if diff:
            raise MembenchError(f"an engine (pid {info['pid']}) already serves this MEMBENCH_HOME with a different "
                                + "; ".join(diff), "stop it first: `membench engine stop`")
        return {"pid": info["pid"], "started": False}
    log_path = engine_dir() / "engine.log"
    read_fd, write_fd = os.pipe()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "benchmark.engine.server", "--idle-minutes", str(idle_minutes),
                                 "--ready-fd", str(write_fd)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                pass_fds=(write_fd,), start_new_session=True, env=env)
    os.close(write_fd)
    began = time.perf_counter()
    with os.fdopen(read_fd, "rb") as ready:  # one line once it listens; end of file if it died
        line = ready.readline()
    if not line.startswith(b"ready"):
        proc.wait(timeout=START_TIMEOUT_S)
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise MembenchError(f"the engine did not start (exit {proc.returncode}): {tail[0]}", f"see {log_path}")
    return {"pid": proc.pid, "started": True, "seconds": round(time.perf_counter() - began, 3), "log": str(log_path)}


def stop() -> dict | None:
    """Stop the running engine (a run in progress is killed); its last state, or None if none ran."""
    from ..home import process_alive

    info = ping()
    if info is None:
        return None
    import signal

    try:
        ask("stop")
    except (EngineError, OSError, ValueError):
        pass
    for signum in (None, signal.SIGTERM, signal.SIGKILL):  # asked; then told; then killed
        if signum is not None:
            try:
                os.kill(info["pid"], signum)
            except OSError:
                pass
        for _ in range(100):
            if not process_alive(info["pid"]):
                return info
            time.sleep(0.05)
    return info


def usable_here(info: dict) -> str | None:
    """Why a `membench run` in this process's environment would not use the engine (None: it would)."""
    if switched_off():
        return "MEMBENCH_ENGINE=off"
    diff = differences(info["fingerprint"], fingerprint())
    return "; ".join(diff) if diff else None


def delegate(argv: list[str], entry: str = "cli") -> int | None:
    """Run ``membench ARGV`` (``entry="profile"``: ``python -m benchmark.profiling ARGV``) in a
    child of the engine and return its exit status; ``None`` when no engine can take it (the
    caller then runs the command itself)."""
    import signal

    verbose = "-v" in argv or "--verbose" in argv
    if switched_off():
        return None
    if entry == "cli" and command_of(argv) not in SERVED:
        return None
    if not socket_path().exists():
        return None
    # Signals meant for the run go to the child's process group; one that comes before the
    # child exists waits for it (so Ctrl-C at any moment stops the run, never just the client).
    child: list[int] = []
    pending: list[int] = []

    def forward(signum, _frame):
        if not child:
            pending.append(signum)
            return
        try:
            os.killpg(child[0], signum)
        except OSError:
            pass

    previous = {signum: signal.signal(signum, forward)
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    sock = None
    try:
        sock = _connect()
        request = {"op": "run", "entry": entry, "argv": list(argv), "argv0": sys.argv[0], "path": list(sys.path),
                   "cwd": os.getcwd(), "umask": _umask(), "env": dict(os.environ), "fingerprint": fingerprint(),
                   "package": sys.modules["benchmark"].__file__}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        _send(sock, request, [0, 1, 2])
        answers = _lines(sock)
        first = next(answers, None)  # at once: the server forks before it reads the next request
        sock.settimeout(None)
    except (EngineError, OSError, ValueError) as exc:
        first, why = None, str(exc)
    else:
        why = (first or {}).get("refused", "no answer")
    if not first or "pid" not in first:
        if sock is not None:
            sock.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending:  # interrupted before anything ran
            print("membench: error: interrupted", file=sys.stderr)
            return 130
        if verbose:
            print(f"membench: not using the engine: {why}", file=sys.stderr)
        return None
    child.append(int(first["pid"]))
    for signum in pending:
        forward(signum, None)
    try:
        for answer in answers:
            if "exit" in answer:
                return int(answer["exit"])
    except (OSError, ValueError):
        pass
    finally:
        sock.close()
    print("membench: error: the engine's child ended without an exit status "
          "(run again with MEMBENCH_ENGINE=off to run without the engine)", file=sys.stderr)
    return 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


if __name__ == "__main__":
    # ``python -m benchmark.engine.client OUT START -- COMMAND ...``: ``python -m
    # benchmark.profiling`` with the same arguments, run in a child of the engine as `membench
    # run` would be (what `membench bench --profile --engine` times).
    from benchmark.engine.client import delegate as _delegate
    from benchmark.exiting import exit_now

    code = _delegate(sys.argv[1:], entry="profile")
    if code is None:
        print("no engine could take the profiled command (`membench engine status` says why)", file=sys.stderr)
        code = 3
    exit_now(code)
