"""Sharded on-disk cache of token statistics, keyed by everything that can change them.

Key = SHA-256 of: target id, revision, weights hash, tokenizer hash, dtype, context rule and
max length, split id and content hash, feature-set version. Under the key's folder:

- ``meta.json``: the key parts, the number of samples and the shard layout;
- ``shard-NNNNN.npz`` + ``shard-NNNNN.json``: the statistics of one shard (a fixed group of
  samples, consecutive in length-sorted order: uids, offsets, input and text token counts, the
  characters scored, logprob/mu/sigma, token ids and their character end offsets) and that
  file's SHA-256.

Shards are written atomically as they finish, so a killed run resumes from the shards it
completed. A shard whose bytes no longer match its recorded hash, or that holds other
samples, is reported and recomputed, never used.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from ..api import STATS, TokenStats
from ..hashing import sha256_bytes, sha256_json
from ..home import features_dir

# Per-text facts saved beside the statistics when the pass had them (texts, fast tokenizer).
OPTIONAL = ("n_text_tokens", "text_chars", "char_end")


def cache_key(parts: dict) -> str:
    return sha256_json(parts)


def entry_dir(key: str) -> Path:
    return features_dir(key)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def shard_paths(key: str, index: int) -> tuple[Path, Path]:
    out = entry_dir(key)
    return out / f"shard-{index:05d}.npz", out / f"shard-{index:05d}.json"


def reset(key: str) -> None:
    """Forget an entry's layout and shards (before writing a new layout)."""
    for path in entry_dir(key).glob("shard-*"):
        path.unlink(missing_ok=True)
    (entry_dir(key) / "meta.json").unlink(missing_ok=True)


def write_meta(key: str, parts: dict, n: int, shard_size: int, n_shards: int) -> None:
    meta = {"key": key, "parts": parts, "n": n, "shard_size": shard_size, "n_shards": n_shards}
    _atomic_write(entry_dir(key) / "meta.json", (json.dumps(meta, indent=2) + "\n").encode())


def read_meta(key: str) -> dict | None:
    path = entry_dir(key) / "meta.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def save_shard(key: str, index: int, stats: TokenStats, uids: list[str]) -> None:
    buf = io.BytesIO()
    np.savez(
        buf,
        offsets=stats.offsets,
        n_input_tokens=stats.n_input_tokens,
        uids=np.asarray(uids, dtype=str),
        token_ids=stats.token_ids,  # compute always records them
        **{name: getattr(stats, name) for name in OPTIONAL if getattr(stats, name) is not None},
        **{f"v_{k}": stats.values[k] for k in STATS},
    )
    data = buf.getvalue()
    data_file, hash_file = shard_paths(key, index)
    _atomic_write(data_file, data)
    _atomic_write(hash_file, json.dumps({"sha256": sha256_bytes(data), "n": len(uids)}).encode())


def load_shard(key: str, index: int, uids: list[str] | None = None):
    """(stats, shard uids, None) on a valid shard; (None, None, reason) otherwise (reason
    None when the shard simply is not there yet)."""
    data_file, hash_file = shard_paths(key, index)
    if not data_file.exists() or not hash_file.exists():
        return None, None, None
    try:
        recorded = json.loads(hash_file.read_text())["sha256"]
        data = data_file.read_bytes()
        if sha256_bytes(data) != recorded:
            return None, None, f"cache shard {data_file} does not match its hash; recomputing it"
        arrays = np.load(io.BytesIO(data))
        shard_uids = [str(u) for u in arrays["uids"]]
        if uids is not None and shard_uids != list(uids):
            return None, None, f"cache shard {data_file} holds other samples; recomputing it"
        stats = TokenStats(
            offsets=arrays["offsets"],
            n_input_tokens=arrays["n_input_tokens"],
            values={k: arrays[f"v_{k}"] for k in STATS},
            token_ids=arrays["token_ids"],
            **{name: arrays[name] if name in arrays.files else None for name in OPTIONAL},
        )
        return stats, shard_uids, None
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        return None, None, f"cache shard {data_file} is unreadable ({exc}); recomputing it"
