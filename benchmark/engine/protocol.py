"""The engine's protocol: what a client must share with the server (``fingerprint``), the
wire format (a 4-byte big-endian length, a JSON object, descriptors as ancillary data; answers
as JSON lines) and the request's command line (``command_of``, ``device_of``)."""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from pathlib import Path

from ..home import engine_socket as socket_path  # noqa: F401 (re-exported)

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


def switched_off() -> bool:
    """Whether this process's environment keeps its runs off the engine (MEMBENCH_ENGINE=off)."""
    return os.environ.get("MEMBENCH_ENGINE", "").lower() in OFF


def env_part(env: dict) -> dict:
    """The environment as a fingerprint holds it: every variable but the shell's ``VOLATILE`` ones."""
    return {k: v for k, v in sorted(env.items()) if k not in VOLATILE}


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
        "env": env_part(env),
        "limits": _limits(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "nice": os.nice(0),
        "flags": [list(sys.flags), sorted(getattr(sys, "_xoptions", {}).items())],
        "ids": [os.getuid(), os.getgid(), sorted(os.getgroups())],
    }))


def _module_files(own: bool) -> dict[str, list]:
    """Per loaded module, its file, size and modification time (what an upgrade or an edit
    changes): every top-level third-party package (``own=False``), or every module of
    membench (``own=True``)."""
    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        ours = name == "benchmark" or name.startswith("benchmark.")
        if not path or ours != own or (not own and "." in name):
            continue
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
        for fd in fds:
            os.close(fd)
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


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket (from the kernel)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _connect(timeout: float = CONNECT_TIMEOUT_S, path: Path | None = None) -> socket.socket:
    """A connection to the engine, checked to be served by this user before a byte is sent
    (a request carries the environment, tokens included, and the terminal: a socket put in
    the way by another user, through a shared MEMBENCH_HOME, gets neither)."""
    path = path or socket_path()
    if not path.exists():
        raise EngineError("no engine is running (start one with `membench engine start`)")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        owner = peer_uid(sock)
    except OSError as exc:
        sock.close()
        raise EngineError(f"the engine does not answer at {path} ({exc.strerror or exc})") from None
    if owner != os.getuid():
        sock.close()
        raise EngineError(f"the socket at {path} is served by another user (uid {owner}): not used")
    return sock


def ask(op: str, **fields) -> dict:
    """One request without streams (``ping``, ``stop``); the server's answer."""
    with _connect() as sock:
        _send(sock, {"op": op, **fields})
        for answer in _lines(sock):
            return answer
    raise EngineError("the engine closed the connection without an answer")


def command_of(argv: list[str]) -> str | None:
    """The command of a ``membench`` command line (after the global ``-v``)."""
    rest = [a for a in argv[:2] if a not in ("-v", "--verbose")]
    return rest[0] if rest else None


def device_of(argv: list[str]) -> str:
    """The ``--device`` a command line asks for (``cpu`` when it names none)."""
    for i, arg in enumerate(argv):
        if arg == "--device" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--device="):
            return arg.split("=", 1)[1]
    return "cpu"


