"""The wire format between the harness and a sandboxed scorer: no pickle, every byte bounded.

A message is one frame holding a JSON header, then one frame per array the header declares
(``"arrays": [{"name", "dtype", "shape"}]``), each exactly ``prod(shape) * itemsize`` raw
little-endian bytes of one of four dtypes. A frame is an 8-byte big-endian length and the
bytes. Nothing is ever unpickled, and nothing is allocated from a length the other side
declared before that length has been checked against the caps of the ``Channel``.

This file is the protocol's one table of what may cross:

- ``SCORER_MESSAGES``: every message a scorer may send, with every field's type and size
  (``check_message`` is the only place a scorer's message is type-checked);
- ``METHODS``: every capability call, with the capability that must be declared for it, its
  arguments (types and caps) and the kind of its reply;
- ``INPUTS``: every capability served as data in the harness's ``init`` message rather than by a
  call (``fit``: the calibration rows and their labels; ``groups``: the group id of every row,
  answered by ``group_result``, one score per group, instead of ``result``). A new capability is one entry here
  plus the ``ModelAccess`` method of the same name on the harness side; the sandbox's proxy
  (``child.py``) and the harness's server (``capability_server.py``) are both built from this table.

Standard library and numpy only: the sandbox imports this file.
"""

from __future__ import annotations

import json
import math
import select
import socket
import struct
import time
from dataclasses import dataclass

import numpy as np

_LEN = struct.Struct(">Q")
DTYPES = {"<f4": np.float32, "<f8": np.float64, "<i4": np.int32, "<i8": np.int64}


class ProtocolError(Exception):
    """The other side sent something that is not a valid message (or went away)."""


class Timeout(ProtocolError):
    """The other side did not send (or take) a whole message before the deadline."""


class TooLarge(ProtocolError):
    """A message or the run's traffic exceeded its byte cap."""


@dataclass(frozen=True)
class Caps:
    """Byte caps on what one side accepts. The harness uses the defaults for what a scorer
    sends; ``max_run`` counts every byte received over the whole run."""

    max_header: int = 32 << 20
    max_message: int = 128 << 20
    max_run: int = 512 << 20


UNCAPPED = Caps(max_header=1 << 40, max_message=1 << 40, max_run=1 << 50)


class Channel:
    """One end of the socket pair. With a ``deadline`` (``time.monotonic``), every send and
    receive gives up with ``Timeout`` when it passes, whatever the other side does (a side
    that never reads cannot block a sender); without one, calls block (the sandbox's end)."""

    def __init__(self, sock: socket.socket, *, deadline: float | None = None, caps: Caps = Caps()):
        self.sock = sock
        self.deadline = deadline
        self.caps = caps
        self.received = 0
        if deadline is not None:
            sock.setblocking(False)

    # -- raw bytes ---------------------------------------------------------------------
    def _wait(self, write: bool) -> None:
        if self.deadline is None:
            return
        poller = select.poll()  # not select(): descriptors past 1024 are fine
        poller.register(self.sock, select.POLLOUT if write else select.POLLIN)
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise Timeout("deadline passed")
            if poller.poll(min(left, 0.5) * 1000):
                return

    def _send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self._wait(write=True)
            try:
                n = self.sock.send(view[: 1 << 20])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                raise ProtocolError(f"the other side closed the channel ({exc.strerror})") from None
            view = view[n:]

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            self._wait(write=False)
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                raise ProtocolError(f"the other side closed the channel ({exc.strerror})") from None
            if not chunk:
                raise ProtocolError("the other side closed the channel")
            buf += chunk
            self.received += len(chunk)
            if self.received > self.caps.max_run:
                raise TooLarge(f"the run sent more than {self.caps.max_run >> 20} MiB over the protocol")
        return bytes(buf)

    def _frame(self, limit: int, what: str) -> bytes:
        (n,) = _LEN.unpack(self._read_exact(_LEN.size))
        if n > limit:
            raise TooLarge(f"a {what} of {n} bytes exceeds the {limit}-byte cap")
        return self._read_exact(n)

    # -- messages ----------------------------------------------------------------------
    def send(self, header: dict, arrays: dict | None = None) -> None:
        wire = {name: _wire(arr) for name, arr in (arrays or {}).items()}
        specs = [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape)} for n, a in wire.items()]
        body = json.dumps(dict(header, arrays=specs), allow_nan=False, separators=(",", ":")).encode()
        parts = [_LEN.pack(len(body)), body]
        for arr in wire.values():
            raw = arr.tobytes()
            parts += [_LEN.pack(len(raw)), raw]
        self._send_all(b"".join(parts))

    def recv(self) -> tuple[dict, dict]:
        """(header, arrays); raises ``Timeout``, ``TooLarge`` or ``ProtocolError``."""
        raw = self._frame(self.caps.max_header, "message header")
        try:
            header = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ProtocolError(f"a message header is not JSON ({type(exc).__name__})") from None
        if not isinstance(header, dict):
            raise ProtocolError("a message header is not a JSON object")
        specs = header.pop("arrays", [])
        if not isinstance(specs, list) or len(specs) > 64:
            raise ProtocolError("'arrays' must be a list of at most 64 array descriptions")
        plan, total = [], len(raw)
        for spec in specs:
            name, dtype, shape = _array_spec(spec)
            nbytes = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
            total += nbytes
            if total > self.caps.max_message:
                raise TooLarge(f"a message of more than {self.caps.max_message} bytes exceeds the cap")
            plan.append((name, dtype, shape, nbytes))
        arrays = {}
        for name, dtype, shape, nbytes in plan:
            data = self._frame(nbytes, f"array '{name}'")
            if len(data) != nbytes:
                raise ProtocolError(f"array '{name}' holds {len(data)} bytes, its header declares {nbytes}")
            arrays[name] = np.frombuffer(data, dtype=np.dtype(DTYPES[dtype])).reshape(shape)
        return header, arrays

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _wire(arr) -> np.ndarray:
    """An array in one of the four wire dtypes, little-endian and contiguous."""
    arr = np.asarray(arr)
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f":
        target = "<f4" if size <= 4 else "<f8"
    elif kind == "b" or (kind in "iu" and size < 4) or (kind == "i" and size == 4):
        target = "<i4"
    elif kind in "iu":
        target = "<i8"
    else:
        raise TypeError(f"arrays of dtype {arr.dtype} cannot cross the protocol")
    return np.ascontiguousarray(arr, dtype=np.dtype(target))


def _array_spec(spec) -> tuple[str, str, tuple[int, ...]]:
    if not isinstance(spec, dict) or set(spec) != {"name", "dtype", "shape"}:
        raise ProtocolError("an array description must be {name, dtype, shape}")
    name, dtype, shape = spec["name"], spec["dtype"], spec["shape"]
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        raise ProtocolError("an array name must be a string of 1 to 64 characters")
    if dtype not in DTYPES:
        raise ProtocolError(f"array dtype must be one of {', '.join(DTYPES)}")
    if (not isinstance(shape, list) or len(shape) > 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape)):
        raise ProtocolError("an array shape must be a list of at most 2 non-negative integers")
    return name, dtype, tuple(shape)


# ---- field types: each checks a value and returns it (or raises ValueError saying why) ----------
class Str:
    def __init__(self, max_chars: int):
        self.max_chars = max_chars

    def __call__(self, v):
        if not isinstance(v, str):
            raise ValueError("must be a string")
        if len(v) > self.max_chars:
            raise ValueError(f"must be at most {self.max_chars} characters (got {len(v)})")
        return v


class Int:
    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def __call__(self, v):
        if not isinstance(v, int) or isinstance(v, bool) or not self.lo <= v <= self.hi:
            raise ValueError(f"must be an integer in {self.lo}..{self.hi}")
        return v


class Float:
    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi

    def __call__(self, v):
        if not isinstance(v, int | float) or isinstance(v, bool) or not self.lo <= v <= self.hi:
            raise ValueError(f"must be a number in {self.lo}..{self.hi}")
        return float(v)


class IntLists:
    """Rows of token ids: a list of lists of non-negative integers, capped in rows, ids per row
    and ids in all (``max_len`` 0: each row is one id list of at most ``max_total`` ids, e.g. a
    list of candidate ids when ``rows`` is False)."""

    def __init__(self, max_items: int, max_len: int, max_total: int, rows: bool = True):
        self.max_items, self.max_len, self.max_total, self.rows = max_items, max_len, max_total, rows

    def __call__(self, v):
        def ids(row):
            if not isinstance(row, list) or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 1 << 31
                                                    for t in row):
                raise ValueError("must hold lists of non-negative integer token ids")
            return row

        if not self.rows:
            if len(ids(v)) > self.max_items:
                raise ValueError(f"must hold at most {self.max_items} ids (got {len(v)})")
            return v
        if not isinstance(v, list):
            raise ValueError("must be a list of token-id lists")
        if len(v) > self.max_items:
            raise ValueError(f"must hold at most {self.max_items} rows (got {len(v)})")
        for row in v:
            if len(ids(row)) > self.max_len:
                raise ValueError(f"rows are limited to {self.max_len} ids (got {len(row)})")
        if sum(len(r) for r in v) > self.max_total:
            raise ValueError(f"must hold at most {self.max_total} ids in all")
        return v


class Strings:
    """A list of strings, capped in items, characters per item and characters in all."""

    def __init__(self, max_items: int, max_chars: int, max_total: int):
        self.max_items, self.max_chars, self.max_total = max_items, max_chars, max_total

    def __call__(self, v):
        if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
            raise ValueError("must be a list of strings")
        if len(v) > self.max_items:
            raise ValueError(f"must hold at most {self.max_items} items (got {len(v)})")
        longest = max((len(t) for t in v), default=0)
        if longest > self.max_chars:
            raise ValueError(f"items are limited to {self.max_chars} characters (got {longest})")
        if sum(len(t) for t in v) > self.max_total:
            raise ValueError(f"must hold at most {self.max_total} characters in all")
        return v


class OneOf:
    def __init__(self, *values):
        self.values = values

    def __call__(self, v):
        if v not in self.values:
            raise ValueError(f"must be one of {', '.join(map(str, self.values))}")
        return v


def _object(v):
    if not isinstance(v, dict):
        raise ValueError("must be an object")
    return v


# ---- what a scorer may send (checked by the harness, in check_message) -----------------------
SCORER_MESSAGES = {
    "loaded": {"fields": {"class": Str(200), "name": Str(200), "version": Str(100),
                          "requires": Strings(16, 32, 512)}},
    "call": {"fields": {"method": Str(64), "kwargs": _object}},
    "result": {"fields": {}, "arrays": {"scores": 2}},  # at most 2-d here; the shape is checked later
    "fitted": {"fields": {}},  # fit() returned: the calibration subset's labels are no longer readable
    # a groups scorer's output as a mapping: scores[i] is the score of groups[i] (an aligned array goes as "result")
    "group_result": {"fields": {"groups": Strings(max_items=1 << 20, max_chars=256, max_total=64 << 20)},
                     "arrays": {"scores": 2}},
    "error": {"fields": {"stage": OneOf("init", "import", "load", "fit", "score", "output"),
                         "kind": OneOf("memory", "exception"), "type": Str(200),
                         "message": Str(4000), "traceback": Str(16000)}},
}


def check_message(header: dict, arrays: dict) -> dict:
    """The one type check of a scorer's message: known ``op``, exactly the declared fields,
    each of its type and size, and only the arrays that message may carry. Returns the
    message (with ``arrays``); raises ``ProtocolError`` naming the field."""
    op = header.get("op")
    if op not in SCORER_MESSAGES:
        raise ProtocolError(f"unknown message op {str(op)[:40]!r}")
    spec = SCORER_MESSAGES[op]
    fields = spec["fields"]
    extra = set(header) - set(fields) - {"op"}
    if extra:
        raise ProtocolError(f"message '{op}' has unexpected field(s) {', '.join(sorted(str(e)[:40] for e in extra))}")
    for key, check in fields.items():
        if key not in header:
            raise ProtocolError(f"message '{op}' lacks field '{key}'")
        try:
            check(header[key])
        except ValueError as exc:
            raise ProtocolError(f"message '{op}': field '{key}' {exc}") from None
    allowed = spec.get("arrays", {})
    if set(arrays) != set(allowed):
        raise ProtocolError(f"message '{op}' must carry arrays {sorted(allowed) or 'none'}, "
                            f"not {sorted(str(a)[:40] for a in arrays) or 'none'}")
    for name, ndim in allowed.items():
        if arrays[name].ndim > ndim:
            raise ProtocolError(f"message '{op}': array '{name}' has more than {ndim} dimension(s)")
    return {**header, "arrays": arrays}


# ---- capabilities served as data in ``init``: one entry per capability ---------------------------
INPUTS = {
    "fit": "init.fit: {uids, texts, has_features} of the calibration rows, arrays c_labels (and c_* statistics)",
    "groups": "init.groups: the opaque group id of every row (aligned with init.uids); the scorer answers "
              "with one score per group: 'result' aligned with the sorted distinct groups, or 'group_result'",
}


# ---- capability calls: one entry per method ----------------------------------------------------
TEXTS = Strings(max_items=1024, max_chars=32_000, max_total=4_000_000)
PROMPTS = Strings(max_items=64, max_chars=8_000, max_total=256_000)


ROWS = IntLists(max_items=1024, max_len=32_768, max_total=4_000_000)


@dataclass(frozen=True)
class Method:
    capability: str | None  # what `requires` must declare (None: granted with any model access)
    args: tuple  # ((argument name, field type), ...) in the order of the ModelAccess method
    reply: str  # "stats" (TokenStats), "floats" (an array), "strings", "string_lists", "int_lists"
    chunk: str | None = None  # the list argument the harness serves in pieces (deadline checked between)
    piece: int = 64  # items per piece
    defaults: tuple = ()  # ((argument name, default), ...) for trailing arguments a call may leave out


METHODS = {
    "logprobs": Method("logprobs", (("texts", TEXTS),), "stats", "texts"),
    "conditional_logprobs": Method("logprobs", (("prefix", Str(32_000)), ("texts", TEXTS)), "stats", "texts"),
    "reference": Method("reference", (("texts", TEXTS),), "stats", "texts"),
    "gradient_norms": Method("gradients", (("texts", TEXTS),), "floats", "texts"),
    "generate": Method("generate", (("prompts", PROMPTS), ("max_new_tokens", Int(1, 256))), "strings", "prompts", 1),
    "tokenize": Method(None, (("texts", TEXTS),), "int_lists", "texts"),
    # Added for the attacks of 2024-2025 (SaMIA, Infilling score, DE-COP):
    "sample": Method("generate", (("prompts", PROMPTS), ("max_new_tokens", Int(1, 4096)), ("num_samples", Int(1, 64)),
                                  ("temperature", Float(1e-6, 100.0)), ("top_k", Int(0, 1 << 30)),
                                  ("top_p", Float(1e-9, 1.0)), ("seed", Int(0, (1 << 63) - 1))),
                     "string_lists", "prompts", 1,
                     (("num_samples", 1), ("temperature", 1.0), ("top_k", 0), ("top_p", 1.0), ("seed", 0))),
    "token_logprobs": Method("logprobs", (("sequences", ROWS),), "stats", "sequences"),
    "argmax_tokens": Method("logprobs", (("sequences", ROWS),), "int_lists", "sequences"),
    "next_logprobs": Method("logprobs", (("sequences", ROWS), ("candidates", IntLists(4096, 0, 0, rows=False))),
                            "floats", "sequences"),
}


def check_call(method: str, kwargs: dict) -> dict:
    """A call's arguments against ``METHODS``; raises ``ValueError`` naming the argument."""
    spec = METHODS[method]
    names = [n for n, _ in spec.args]
    extra = set(kwargs) - set(names)
    if extra:
        raise ValueError(f"{method}() got unexpected argument(s) {', '.join(sorted(str(e)[:40] for e in extra))}")
    kwargs = {**dict(spec.defaults), **kwargs}
    out = {}
    for name, check in spec.args:
        if name not in kwargs:
            raise ValueError(f"{method}() lacks argument '{name}'")
        try:
            out[name] = check(kwargs[name])
        except ValueError as exc:
            raise ValueError(f"{method}(): '{name}' {exc}") from None
    return out


# The optional per-text and per-token arrays of a TokenStats, with their dtypes: the tokens
# of the whole text (truncation), the characters its input covers, each token's end offset.
OPTIONAL_STATS = {"token_ids": np.int32, "n_text_tokens": np.int64, "text_chars": np.int64, "char_end": np.int32}


def stats_to_arrays(stats, prefix: str = "") -> dict:
    """A TokenStats as named arrays (offsets, n_input_tokens, v_<stat>, and those of
    ``OPTIONAL_STATS`` that it has)."""
    out = {f"{prefix}offsets": np.asarray(stats.offsets, np.int64),
           f"{prefix}n_input_tokens": np.asarray(stats.n_input_tokens, np.int64)}
    out.update({f"{prefix}v_{k}": np.asarray(v, np.float32) for k, v in stats.values.items()})
    for name, dtype in OPTIONAL_STATS.items():
        if getattr(stats, name, None) is not None:
            out[f"{prefix}{name}"] = np.asarray(getattr(stats, name), dtype)
    return out


def arrays_to_stats_kwargs(arrays: dict, prefix: str = "") -> dict:
    values = {k[len(prefix) + 2 :]: v for k, v in arrays.items() if k.startswith(prefix + "v_")}
    return {
        "offsets": arrays[prefix + "offsets"],
        "n_input_tokens": arrays[prefix + "n_input_tokens"],
        "values": values,
        **{name: arrays.get(prefix + name) for name in OPTIONAL_STATS},
    }


def fd_socket(fd: int) -> socket.socket:
    """The socket behind an inherited file descriptor (the sandbox's end)."""
    return socket.socket(fileno=fd)
