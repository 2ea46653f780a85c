"""The engine's server: preloads, listens, forks one child per run request (``python -m
benchmark.engine.server``, started by ``benchmark.engine.start``)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from ..home import engine_dir
from .protocol import (CONNECT_TIMEOUT_S, DEFAULT_IDLE_MINUTES, SERVED, EngineError, _changed, _module_files,
                       _recv, command_of, device_of, differences, env_part, fingerprint, peer_uid, socket_path)

# The third-party modules the server imports before it serves (the model code of the
# architectures in the registry included): what a cold run would otherwise import itself.
PRELOAD = (
    "numpy", "pandas", "pyarrow.parquet", "tokenizers", "tqdm.auto", "torch", "transformers",
    "transformers.models.auto.modeling_auto", "transformers.models.auto.tokenization_auto",
    "transformers.models.gpt_neox.modeling_gpt_neox", "transformers.models.opt.modeling_opt",
    "safetensors.torch",
)
# membench's modules a run needs before its first phase (the command modules come with them).
OWN_PRELOAD = ("benchmark.cli", "benchmark.runner", "benchmark.profiling")


class Server:
    """The engine: preloads, listens, forks one child per run request, reports each child's
    exit status to its client, and kills a child whose client is gone."""

    def __init__(self, idle_minutes: float = DEFAULT_IDLE_MINUTES):
        self.idle_s = idle_minutes * 60
        self.folder = engine_dir()
        self.path = socket_path()
        self.children: dict[int, socket.socket] = {}
        self.served = 0
        self.last = time.time()
        self.stopping = False

    def serve(self, ready_fd: int | None = None) -> int:
        import fcntl
        import gc
        import importlib
        import selectors
        import signal

        self.folder.chmod(0o700)
        self.lock = open(self.folder / "engine.lock", "a+")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print("another engine already serves this MEMBENCH_HOME", file=sys.stderr)
            return 3
        self.started = time.time()
        before = dict(os.environ)
        # membench's own modules too (a child reuses them while none of their files has
        # changed and the client's `benchmark` is this one; otherwise it imports them anew)
        from .. import cli

        for name in PRELOAD + OWN_PRELOAD + tuple(f"benchmark.commands.{c}" for c in cli.COMMANDS):
            importlib.import_module(name)
        self.preload_s = time.time() - self.started
        # What the imports did to the environment (torch sets TORCHINDUCTOR_CACHE_DIR): a fresh
        # process has it after its own imports, so every child gets it on top of its client's.
        self.env_changes = {k: os.environ.get(k) for k in set(before) | set(os.environ)
                            if before.get(k) != os.environ.get(k)}
        self.mine = fingerprint(before)
        self.files = _module_files(own=False)
        self.own = _module_files(own=True)
        self.package = sys.modules["benchmark"].__file__
        # Children would otherwise run full collections over every preloaded object (0.2-0.3 s
        # each, and a copy of every page they touch): what the server holds now is permanent.
        gc.collect()
        gc.freeze()
        self.path.unlink(missing_ok=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.listener.bind(str(self.path))
        finally:
            os.umask(old)
        self.listener.listen(16)
        self.listener.setblocking(False)
        (self.folder / "engine.pid").write_text(str(os.getpid()))
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._stop)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        print(f"engine {os.getpid()} ready in {self.preload_s:.2f} s at {self.path}", file=sys.stderr, flush=True)
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        try:
            self._loop()
        finally:
            for pid in list(self.children):
                _kill_group(pid)
            self.path.unlink(missing_ok=True)
            (self.folder / "engine.pid").unlink(missing_ok=True)
            self.listener.close()
        return 0

    def _stop(self, *_):
        self.stopping = True

    def _loop(self) -> None:
        while not self.stopping:
            idle_left = self.idle_s - (time.time() - self.last)
            if not self.children and idle_left <= 0:
                print("engine idle: exiting", file=sys.stderr, flush=True)
                return
            for key, _ in self.sel.select(timeout=max(min(idle_left, 60.0), 0.05)):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    try:
                        while os.read(self.wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                else:  # a running child's client: the connection closed, so the client is gone
                    try:
                        gone = key.fileobj.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                    except BlockingIOError:
                        gone = False
                    except OSError:
                        gone = True
                    if gone:
                        _kill_group(key.data)
                        self.sel.unregister(key.fileobj)
            self._reap()

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            try:
                self.sel.unregister(conn)
            except (KeyError, ValueError):
                pass
            _answer(conn, {"exit": code if code >= 0 else 128 - code})
            conn.close()
            self.last = time.time()

    def _accept(self) -> None:
        import selectors

        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(True)
        conn.settimeout(CONNECT_TIMEOUT_S)
        self.last = time.time()
        fds: list[int] = []
        try:
            request, fds = _recv(conn)  # read first: a refusal must reach the client, not a reset
            if peer_uid(conn) != os.getuid():
                raise EngineError("refused: the engine serves only its own user")
            op = request.get("op")
            if op == "ping":
                _answer(conn, {"pid": os.getpid(), "served": self.served, "preload_s": round(self.preload_s, 3),
                               "started": self.started, "running": len(self.children), "fingerprint": self.mine})
            elif op == "stop":
                _answer(conn, {"stopping": True})
                self.stopping = True
            elif op == "run":
                why = _refusal(request, fds, self.mine, self.files)
                if why:
                    _answer(conn, {"refused": why})
                else:
                    request["env"] = _with_changes(request["env"], self.env_changes)
                    request["fresh"] = bool(request.get("package") != self.package or _changed(self.own))
                    pid = self._fork(request, fds, conn)
                    conn.settimeout(None)
                    self.children[pid] = conn
                    self.sel.register(conn, selectors.EVENT_READ, pid)
                    self.served += 1
                    _answer(conn, {"pid": pid})
                    return
            else:
                _answer(conn, {"refused": f"unknown request {op!r}"})
        except (EngineError, OSError) as exc:
            _answer(conn, {"refused": str(exc)})
        finally:
            for fd in fds:
                os.close(fd)
        conn.close()

    def _fork(self, request: dict, fds: list[int], conn) -> int:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid:
            try:
                os.setpgid(pid, pid)  # also done by the child: whichever runs first
            except OSError:
                pass
            return pid
        try:  # the child: its own process group, none of the server's descriptors, one command
            os.setpgid(0, 0)
            self.sel.close()
            for sock in [self.listener, conn, *self.children.values()]:
                sock.close()
            for fd in (self.wake_r, self.wake_w):
                os.close(fd)
            self.lock.close()
        except BaseException:  # noqa: BLE001
            os._exit(1)
        _run_child(request, fds)


def _with_changes(env: dict, changes: dict) -> dict:
    out = dict(env)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _answer(conn: socket.socket, obj: dict) -> None:
    try:
        conn.sendall((json.dumps(obj) + "\n").encode())
    except OSError:
        pass


def _kill_group(pid: int) -> None:
    import signal

    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _refusal(request: dict, fds: list[int], mine: dict, files: dict | None = None) -> str | None:
    """Why this run request cannot be served as a fresh process would run it (None: it can):
    a malformed request, a command or device the engine does not take, a fingerprint other than
    the server's ``mine`` (its environment read from the request's own), or a library among
    ``files`` changed on disk since the server imported it."""
    if len(fds) != 3:
        return "the request did not carry three standard streams"
    entry, argv = request.get("entry"), request.get("argv")
    if entry not in ("cli", "profile") or not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return "malformed request"
    if entry == "cli" and command_of(argv) not in SERVED:
        return f"the engine serves only: {', '.join(SERVED)}"
    if device_of(argv) != "cpu":
        return "the engine serves CPU runs only (CUDA does not survive a fork once the parent has touched it)"
    env = request.get("env")
    if (not isinstance(request.get("path"), list) or not isinstance(request.get("cwd"), str)
            or not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values())):
        return "malformed request"
    theirs = request.get("fingerprint")
    if not isinstance(theirs, dict):
        return "malformed request"
    restart = " (restart it: `membench engine stop`, then `membench engine start`)"
    diff = differences(mine, {**theirs, "env": env_part(env)})
    if diff:
        return "the engine was started with a different " + "; ".join(diff) + restart
    changed = _changed(files or {})
    if changed:
        return f"{', '.join(changed[:5])} changed on disk since the engine started" + restart
    return None


def _run_child(request: dict, fds: list[int]) -> None:
    """In a forked child: take the client's streams, folder, environment and path, import
    membench anew when the server says so (``fresh``), run the one command and exit with its
    status (never returns)."""
    import signal

    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
            stream.reconfigure(line_buffering=stream is sys.stderr or os.isatty(fd))
        os.chdir(request["cwd"])
        os.umask(int(request.get("umask", 0o022)))
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = request["path"]
        if request.get("fresh", True):  # another checkout, or edited since the server loaded it
            for name in [m for m in sys.modules if m == "benchmark" or m.startswith("benchmark.")]:
                del sys.modules[name]
        sys.argv = [request.get("argv0") or "membench", *request["argv"]]
        if request["entry"] == "profile":
            from benchmark.profiling import main as entry_main
        else:
            from benchmark.cli import main as entry_main
        from benchmark.exiting import exit_now, status_of

        exit_now(status_of(entry_main, list(request["argv"])))
    except SystemExit as exc:  # exit_now's ordinary exit (under a tracer)
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:  # noqa: BLE001 - a traceback, as a fresh process would print it
        import traceback

        traceback.print_exc()
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    os._exit(1)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmark.engine.server", description="the engine's server")
    parser.add_argument("--idle-minutes", type=float, default=DEFAULT_IDLE_MINUTES)
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    return Server(args.idle_minutes).serve(args.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
