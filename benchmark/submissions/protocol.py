"""The wire format between the harness and a sandboxed scorer: no pickle, ever.

A message is a length-prefixed JSON header followed by one length-prefixed ``.npy`` blob per
array named in ``header["arrays"]``. Arrays are read with ``allow_pickle=False`` and every
frame is bounded, so a hostile scorer can send nothing that executes in the harness.
Standard library and numpy only: the sandbox imports this file.
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import time

import numpy as np

MAX_FRAME = 512 * 1024 * 1024  # bytes; larger frames are refused
_LEN = struct.Struct(">Q")


class ProtocolError(Exception):
    """The other side sent something that is not a valid message (or went away)."""


class Timeout(Exception):
    """No complete message arrived before the deadline."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise ProtocolError("the other side closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _frame(fd: int, deadline: float | None) -> bytes:
    (n,) = _LEN.unpack(_read_exact(fd, _LEN.size, deadline))
    if n > MAX_FRAME:
        raise ProtocolError(f"message frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
    return _read_exact(fd, n, deadline)


def send(fd: int, header: dict, arrays: dict | None = None) -> None:
    arrays = arrays or {}
    header = dict(header, arrays=list(arrays))
    parts = [json.dumps(header).encode()]
    for name in arrays:
        buf = io.BytesIO()
        np.save(buf, np.asarray(arrays[name]), allow_pickle=False)
        parts.append(buf.getvalue())
    _write_all(fd, b"".join(_LEN.pack(len(p)) + p for p in parts))


def recv(fd: int, deadline: float | None = None) -> tuple[dict, dict]:
    """(header, arrays); raises Timeout past ``deadline`` (time.monotonic) or ProtocolError."""
    try:
        header = json.loads(_frame(fd, deadline))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"malformed message header ({exc})") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays", []), list):
        raise ProtocolError("malformed message header (not an object with an 'arrays' list)")
    arrays = {}
    for name in header["arrays"]:
        try:
            arrays[str(name)] = np.load(io.BytesIO(_frame(fd, deadline)), allow_pickle=False)
        except ValueError as exc:
            raise ProtocolError(f"malformed array {name!r} ({exc})") from None
    return header, arrays


def stats_to_arrays(stats, prefix: str = "") -> dict:
    """A TokenStats as named arrays (offsets, n_input_tokens, v_<stat>, token_ids)."""
    out = {f"{prefix}offsets": stats.offsets, f"{prefix}n_input_tokens": stats.n_input_tokens}
    out.update({f"{prefix}v_{k}": v for k, v in stats.values.items()})
    if getattr(stats, "token_ids", None) is not None:
        out[f"{prefix}token_ids"] = stats.token_ids
    return out


def arrays_to_stats_kwargs(arrays: dict, prefix: str = "") -> dict:
    values = {
        k[len(prefix) + 2 :]: v for k, v in arrays.items() if k.startswith(prefix + "v_")
    }
    return {
        "offsets": arrays[prefix + "offsets"],
        "n_input_tokens": arrays[prefix + "n_input_tokens"],
        "values": values,
        "token_ids": arrays.get(prefix + "token_ids"),
    }
