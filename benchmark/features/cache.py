"""On-disk cache of token statistics, keyed by everything that can change them.

Key = SHA-256 of: target id, revision, weights hash, tokenizer hash, dtype, context rule and
max length, split id and content hash, feature-set version. A cached file carries its own
SHA-256 in ``meta.json``; a file that no longer matches is reported and recomputed, never used.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from ..hashing import sha256_bytes, sha256_json
from ..home import subdir
from .engine import STATS, TokenStats


def cache_key(parts: dict) -> str:
    return sha256_json(parts)


def entry_dir(key: str) -> Path:
    return subdir("features", key[:2], key)


def save(key: str, stats: TokenStats, uids: list[str], parts: dict) -> Path:
    out = entry_dir(key)
    buf = io.BytesIO()
    np.savez(
        buf,
        offsets=stats.offsets,
        n_input_tokens=stats.n_input_tokens,
        uids=np.asarray(uids),
        **{f"v_{k}": v for k, v in stats.values.items()},
    )
    data = buf.getvalue()
    tmp = out / "stats.npz.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, out / "stats.npz")
    meta = {"key": key, "parts": parts, "sha256": sha256_bytes(data), "n": len(uids)}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def load(key: str, uids: list[str]) -> tuple[TokenStats | None, str | None]:
    """(stats, None) on a valid hit; (None, reason) when absent or unusable."""
    out = entry_dir(key)
    data_file, meta_file = out / "stats.npz", out / "meta.json"
    if not data_file.exists() or not meta_file.exists():
        return None, None
    try:
        meta = json.loads(meta_file.read_text())
        data = data_file.read_bytes()
        if sha256_bytes(data) != meta["sha256"]:
            return None, f"cache file {data_file} does not match its hash; recomputing"
        arrays = np.load(io.BytesIO(data))
        if list(arrays["uids"]) != list(uids):
            return None, f"cache file {data_file} holds other samples; recomputing"
        stats = TokenStats(
            offsets=arrays["offsets"],
            n_input_tokens=arrays["n_input_tokens"],
            values={k: arrays[f"v_{k}"] for k in STATS},
        )
        return stats, None
    except (OSError, ValueError, KeyError) as exc:
        return None, f"cache file {data_file} is unreadable ({exc}); recomputing"
