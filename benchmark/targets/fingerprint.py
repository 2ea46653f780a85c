"""Hashes of a target's weights and tokenizer files, without re-reading gigabytes every run.

Each file's SHA-256 is kept in a memo (``MEMBENCH_HOME/file-hashes``, one JSON file per folder)
with the file's size, modification time (ns) and inode. A file whose size, mtime or inode
changed is hashed again; so is every file under ``verify=True`` (``--verify``), which also
reports a file whose content changed behind an unchanged size and mtime. The folder hash is
``hashing.sha256_files`` over the per-file hashes: the same value as hashing every byte.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..hashing import sha256_file, sha256_files, sha256_text
from ..home import cache_dir

log = logging.getLogger(__name__)

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
# Every file that changes how text becomes ids (tokenizer_config.json holds add_bos_token and
# the added tokens; tokenizer.model is a sentencepiece model).
TOKENIZER_PATTERNS = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model", "tokenizer_config.json",
                      "special_tokens_map.json", "added_tokens.json")


def _memo_file(folder: Path) -> Path:
    return cache_dir("file-hashes") / f"{sha256_text(str(folder))[:32]}.json"


def _read(folder: Path) -> dict:
    try:
        memo = json.loads(_memo_file(folder).read_text())
        return memo["files"] if memo.get("folder") == str(folder) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _write(folder: Path, files: dict) -> None:
    path = _memo_file(folder)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"folder": str(folder), "files": files}, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


class FileHashes:
    """Memoized SHA-256 of the files of one folder (``counter["hashed"]`` counts real reads)."""

    def __init__(self, folder, *, verify: bool = False):
        self.folder = Path(folder).resolve()
        self.verify = verify
        self.files = _read(self.folder)
        self.hashed: list[str] = []
        self._dirty = False

    def sha256(self, path) -> str:
        path = Path(path)
        name = path.name if path.parent.resolve() == self.folder else str(path.resolve())
        stamp = _stamp(path)
        known = self.files.get(name)
        if known is not None and not self.verify and all(known.get(k) == v for k, v in stamp.items()):
            return known["sha256"]
        digest = sha256_file(path)
        self.hashed.append(name)
        if known is not None and known.get("sha256") != digest and known.get("size") == stamp["size"] \
                and known.get("mtime_ns") == stamp["mtime_ns"]:
            log.warning("%s changed without a change of size or modification time (found by --verify)", path)
        self.files[name] = {**stamp, "sha256": digest}
        self._dirty = True
        return digest

    def folder_hash(self, patterns) -> str:
        """One hash over the files matching ``patterns``; "unknown" when there are none."""
        files = sorted({f for pat in patterns for f in self.folder.glob(pat) if f.is_file()})
        if not files:
            return "unknown"
        digest = sha256_files(files, file_hash=self.sha256)
        self.save()
        return digest

    def save(self) -> None:
        if self._dirty:
            try:
                _write(self.folder, self.files)
            except OSError as exc:  # a read-only cache only costs a re-hash next time
                log.warning("could not keep file hashes for %s (%s)", self.folder, exc)
            self._dirty = False
