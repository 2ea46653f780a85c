"""Content hashes used for cache keys, manifests and provenance (SHA-256 everywhere)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj) -> str:
    """Hash of a JSON-serializable object in canonical form (sorted keys, no spaces)."""
    return sha256_text(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str))


def sha256_files(paths, file_hash=sha256_file) -> str:
    """One hash over several files, order-independent in names, sensitive to contents.
    ``file_hash(path)`` gives each file's SHA-256 (a memo may answer it without reading)."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        h.update(path.name.encode())
        h.update(file_hash(path).encode())
    return h.hexdigest()
