"""A warm engine for `membench run`: the imports of torch and transformers paid once, not per run.

A fresh `membench run` that must compute features spends about 3 s importing torch and
transformers and over a second more in the interpreter's start and exit, before and after a
forward pass that takes 4-5 s on the demo. `membench engine start` starts one server per
MEMBENCH_HOME that has imported the heavy third-party libraries (``PRELOAD``) and membench's
modules, then waits. A `membench run` that finds it sends its arguments, ``sys.path``, working
folder, environment, umask and standard streams (the file descriptors themselves, over a Unix
socket) and exits with the status of a child the server forks for it. The child takes the
client's streams, folder, environment and path and runs the command as a fresh process would.
The server has imported membench's own modules too (``OWN_PRELOAD`` and the command modules,
nothing run); a child reuses them only while none of their files has changed since and the
client's ``benchmark`` package is the server's: otherwise it drops every ``benchmark`` module
and imports them anew, so an edited scorer is always what runs. Results are the same as
without the engine (a test compares them file by file).

A run takes the engine only when it would behave exactly as a fresh process; otherwise it runs
in-process as always, saying why under ``-v``:

- a different Python, ``sys.path`` order aside, or a different file for any preloaded library
  (an upgrade changes its modification time);
- a different environment (only the shell's bookkeeping variables, ``VOLATILE``, are ignored:
  libraries read variables such as ``HF_HUB_OFFLINE`` at import, so they must match);
- different resource limits, CPU affinity or niceness;
- a run on a GPU (``--device cuda...``): CUDA cannot be used in a child forked from a process
  that touched it, and on a GPU the imports are a small part of a run anyway;
- ``MEMBENCH_ENGINE=off`` in the environment.

Trust: the socket lives in ``MEMBENCH_HOME/engine`` (mode 0700) and the server serves only
peers of its own uid (``SO_PEERCRED``). Only `membench run` is served; submitted code (`evaluate`,
the worker) never runs in it. Ctrl-C and termination of the client are passed to the child's
process group, and a client that dies without a word (``SIGKILL``) takes its child with it (the
server sees the connection close). The server exits after ``--idle-minutes`` without a request,
on `membench engine stop`, or on SIGTERM, removing its socket.

Protocol: one request per connection, a 4-byte big-endian length and a JSON object (with the
three stream descriptors as ancillary data for ``run``); answers are JSON lines:
``{"pid": N}`` when the child starts, then ``{"exit": CODE}`` when it ends (128 + the signal
for a child killed by one).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time
from pathlib import Path

from .home import engine_dir, engine_socket

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
# The top-level packages whose files must be the same for client and server.
LIBRARIES = ("numpy", "pandas", "pyarrow", "tokenizers", "tqdm", "torch", "transformers", "safetensors",
             "huggingface_hub")
# Variables a shell changes by itself; every other one must match between client and server.
VOLATILE = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES", "TERM", "TERM_PROGRAM",
                      "TERM_PROGRAM_VERSION", "TERM_SESSION_ID", "PS1", "PS2", "PROMPT_COMMAND", "LS_COLORS",
                      "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "SSH_AUTH_SOCK", "DISPLAY", "WINDOWID",
                      "TMUX", "TMUX_PANE", "STY", "HISTFILE", "MAIL"})
SERVED = ("run",)  # the commands a client may hand to the engine
OFF = ("off", "0", "no", "false")  # values of MEMBENCH_ENGINE that keep a run off the engine
MAX_MESSAGE = 8 << 20
CONNECT_TIMEOUT_S = 10.0
DEFAULT_IDLE_MINUTES = 60.0


class EngineError(Exception):
    """The engine cannot take this request (the caller runs the command itself)."""


# --- what must match ---------------------------------------------------------------------------

def _library_files() -> dict[str, list]:
    """Per library: the file it is imported from and that file's size and modification time
    (found without importing it)."""
    import importlib.util

    out = {}
    for name in LIBRARIES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        if not origin or not os.path.exists(origin):
            out[name] = None
            continue
        st = os.stat(origin)
        out[name] = [origin, st.st_size, st.st_mtime_ns]
    return out


def _limits() -> dict[str, list]:
    import resource

    names = [n for n in dir(resource) if n.startswith("RLIMIT_")]
    return {n: list(resource.getrlimit(getattr(resource, n))) for n in sorted(names)}


def fingerprint(env: dict | None = None) -> dict:
    """What a process must share with the server for a forked child to behave as that process
    would: interpreter, library files, environment (less ``VOLATILE``), limits, affinity, nice,
    uid and gid."""
    env = dict(os.environ if env is None else env)
    return json.loads(json.dumps({  # as it travels: lists, not tuples
        "python": [sys.executable, sys.version],
        "libraries": _library_files(),
        "env": {k: v for k, v in sorted(env.items()) if k not in VOLATILE},
        "limits": _limits(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "nice": os.nice(0),
        "flags": [list(sys.flags), sorted(getattr(sys, "_xoptions", {}).items())],
        "ids": [os.getuid(), os.getgid(), sorted(os.getgroups())],
    }))


def _loaded_files() -> dict[str, list]:
    """Every top-level package this process has imported from a file: its file, size and
    modification time (what an upgrade of any of them changes)."""
    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if "." in name or not path:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        out[name] = [path, st.st_size, st.st_mtime_ns]
    return out


def _own_files() -> dict[str, list]:
    """membench's loaded modules: each file with its size and modification time."""
    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (name == "benchmark" or name.startswith("benchmark.")) and path:
            try:
                st = os.stat(path)
            except OSError:
                continue
            out[name] = [path, st.st_size, st.st_mtime_ns]
    return out


def _changed(files: dict[str, list]) -> list[str]:
    """The packages whose file changed on disk since ``files`` was taken."""
    out = []
    for name, (path, size, mtime) in files.items():
        try:
            st = os.stat(path)
        except OSError:
            out.append(name)
            continue
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            out.append(name)
    return out


def differences(mine: dict, theirs: dict) -> list[str]:
    """What differs between two fingerprints, named (environment variables by name)."""
    out = []
    for key in mine:
        if key == "env":
            a, b = mine["env"], theirs.get("env", {})
            names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if names:
                out.append("environment variable" + ("s " if len(names) > 1 else " ") + ", ".join(names[:5])
                           + (" ..." if len(names) > 5 else ""))
        elif mine[key] != theirs.get(key):
            out.append({"python": "the Python interpreter", "libraries": "library files (an upgrade?)",
                        "limits": "resource limits", "affinity": "CPU affinity", "nice": "niceness",
                        "ids": "user or groups", "flags": "interpreter flags"}.get(key, key))
    return out


# --- wire format -------------------------------------------------------------------------------

def _send(sock: socket.socket, obj: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(obj).encode()
    if len(data) > MAX_MESSAGE:
        raise EngineError(f"request of {len(data)} bytes exceeds {MAX_MESSAGE}")
    frame = struct.pack(">I", len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [frame], fds)
        frame = frame[sent:]
    if frame:
        sock.sendall(frame)


def _recv_exact(sock: socket.socket, n: int, fds: list[int]) -> bytes:
    chunks, got = [], 0
    while got < n:
        data, new_fds, _, _ = socket.recv_fds(sock, min(n - got, 1 << 20), 8)
        fds.extend(new_fds)
        if not data:
            raise EngineError("connection closed mid-request")
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def _recv(sock: socket.socket) -> tuple[dict, list[int]]:
    fds: list[int] = []
    (size,) = struct.unpack(">I", _recv_exact(sock, 4, fds))
    if size > MAX_MESSAGE:
        for fd in fds:
            os.close(fd)
        raise EngineError(f"request of {size} bytes exceeds {MAX_MESSAGE}")
    try:
        obj = json.loads(_recv_exact(sock, size, fds))
    except ValueError as exc:
        for fd in fds:
            os.close(fd)
        raise EngineError(f"malformed request ({exc})") from None
    if not isinstance(obj, dict):
        raise EngineError("malformed request (not an object)")
    return obj, fds


def _lines(sock: socket.socket):
    """JSON objects, one per line, until the server closes the connection."""
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield json.loads(line)


def socket_path() -> Path:
    return engine_socket()


def _connect(timeout: float = CONNECT_TIMEOUT_S) -> socket.socket:
    path = socket_path()
    if not path.exists():
        raise EngineError("no engine is running (start one with `membench engine start`)")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise EngineError(f"the engine does not answer at {path} ({exc.strerror or exc})") from None
    return sock


def ask(op: str, **fields) -> dict:
    """One request without streams (``ping``, ``stop``); the server's answer."""
    with _connect() as sock:
        _send(sock, {"op": op, **fields})
        for answer in _lines(sock):
            return answer
    raise EngineError("the engine closed the connection without an answer")


# --- control -----------------------------------------------------------------------------------

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

    from .errors import MembenchError

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
        proc = subprocess.Popen([sys.executable, "-m", "benchmark.engine", "--idle-minutes", str(idle_minutes),
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
    from .home import process_alive

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
    if os.environ.get("MEMBENCH_ENGINE", "").lower() in OFF:
        return "MEMBENCH_ENGINE=off"
    diff = differences(info["fingerprint"], fingerprint())
    return "; ".join(diff) if diff else None


# --- client ------------------------------------------------------------------------------------

def delegate(argv: list[str], entry: str = "cli") -> int | None:
    """Run ``membench ARGV`` (``entry="profile"``: ``python -m benchmark.profiling ARGV``) in a
    child of the engine and return its exit status; ``None`` when no engine can take it (the
    caller then runs the command itself)."""
    import signal

    verbose = "-v" in argv or "--verbose" in argv
    if os.environ.get("MEMBENCH_ENGINE", "").lower() in OFF:
        return None
    if entry == "cli" and _command(argv) not in SERVED:
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


def _command(argv: list[str]) -> str | None:
    """The command of a ``membench`` command line (after the global ``-v``)."""
    rest = [a for a in argv[:2] if a not in ("-v", "--verbose")]
    return rest[0] if rest else None


def _device(argv: list[str]) -> str:
    """The ``--device`` a command line asks for (``cpu`` when it names none)."""
    for i, arg in enumerate(argv):
        if arg == "--device" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--device="):
            return arg.split("=", 1)[1]
    return "cpu"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- server ------------------------------------------------------------------------------------

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
        for name in PRELOAD:
            importlib.import_module(name)
        self.preload_s = time.time() - self.started
        # What the imports did to the environment (torch sets TORCHINDUCTOR_CACHE_DIR): a fresh
        # process has it after its own imports, so every child gets it on top of its client's.
        self.env_changes = {k: os.environ.get(k) for k in set(before) | set(os.environ)
                            if before.get(k) != os.environ.get(k)}
        self.mine = fingerprint(before)
        self.files = {k: v for k, v in _loaded_files().items() if k != "benchmark"}
        # membench's own modules too (a child reuses them while none of their files has
        # changed and the client's `benchmark` is this one; otherwise it imports them anew)
        from . import cli

        for name in OWN_PRELOAD + tuple(f"benchmark.commands.{c}" for c in cli.COMMANDS):
            importlib.import_module(name)
        self.own = _own_files()
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
            if _peer_uid(conn) != os.getuid():
                raise EngineError("refused: the engine serves only its own user")
            op = request.get("op")
            if op == "ping":
                _answer(conn, {"pid": os.getpid(), "served": self.served, "preload_s": round(self.preload_s, 3),
                               "started": self.started, "running": len(self.children), "fingerprint": self.mine})
            elif op == "stop":
                _answer(conn, {"stopping": True})
                self.stopping = True
            elif op == "run":
                changed = _changed(self.files)
                why = _refusal(request, fds, self.mine) or (
                    f"{', '.join(changed[:5])} changed on disk since the engine started (restart it: "
                    "`membench engine stop`, then `membench engine start`)" if changed else None)
                if why:
                    _answer(conn, {"refused": why})
                else:
                    request["env"] = _with_changes(request["env"], self.env_changes)
                    import benchmark

                    request["fresh"] = bool(request.get("package") != benchmark.__file__ or _changed(self.own))
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


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _refusal(request: dict, fds: list[int], mine: dict) -> str | None:
    """Why this run request cannot be served as a fresh process would run it (None: it can)."""
    if len(fds) != 3:
        return "the request did not carry three standard streams"
    entry, argv = request.get("entry"), request.get("argv")
    if entry not in ("cli", "profile") or not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return "malformed request"
    if entry == "cli" and _command(argv) not in SERVED:
        return f"the engine serves only: {', '.join(SERVED)}"
    if _device(argv) != "cpu":
        return "the engine serves CPU runs only (CUDA does not survive a fork once the parent has touched it)"
    env = request.get("env")
    if (not isinstance(request.get("path"), list) or not isinstance(request.get("cwd"), str)
            or not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values())):
        return "malformed request"
    theirs = request.get("fingerprint")
    if not isinstance(theirs, dict):
        return "malformed request"
    diff = differences(mine, theirs)
    if diff:
        return ("the engine was started with a different " + "; ".join(diff)
                + " (restart it: `membench engine stop`, then `membench engine start`)")
    return None


def _run_child(request: dict, fds: list[int]) -> None:
    """In a forked child: take the client's streams, folder, environment and path, import
    membench anew, run the one command and exit with its status (never returns)."""
    import signal

    code = 1
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
        try:
            code = entry_main(list(request["argv"]))
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        from benchmark.cli import exit_now

        exit_now(int(code or 0))
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

    parser = argparse.ArgumentParser(prog="python -m benchmark.engine", description="the engine's server")
    parser.add_argument("--idle-minutes", type=float, default=DEFAULT_IDLE_MINUTES)
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    return Server(args.idle_minutes).serve(args.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
