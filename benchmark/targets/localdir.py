"""Checks of a local model directory, before any work is done.

A folder written by ``save_pretrained`` needs ``config.json``, a tokenizer and complete
weights. Each missing or broken piece is one line naming it (instead of a registry dump, a
``SafetensorError`` traceback, or a full feature pass over a model that cannot load):

- the folder does not exist, or is a file;
- ``config.json`` is missing or is not JSON;
- no tokenizer files (``tokenizer.json``, ``vocab.json`` + ``merges.txt``, ``vocab.txt``,
  ``tokenizer.model`` or ``spiece.model``);
- no weights (``*.safetensors`` or ``*.bin``), a shard named by the index file missing, a
  safetensors file shorter than its own header says (truncated copy or download), or a
  PyTorch zip checkpoint without its central directory (truncated).

A local directory is named in results by the name the user gives (``--target-name``) or by
``local/<folder name>-<first 8 hex digits of the weights hash>``: its path never appears in a
record or on the site.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

from ..errors import MembenchError
from .fingerprint import WEIGHT_PATTERNS, FileHashes

TOKENIZER_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"), ("vocab.txt",), ("tokenizer.model",),
                  ("spiece.model",))
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_FIX = "save the model and its tokenizer with save_pretrained(DIR), or copy the folder again"


def looks_like_path(target: str) -> bool:
    """Whether a target string names a folder rather than a registry id."""
    return target.startswith(("/", ".", "~")) or Path(target).expanduser().exists()


def weight_files(path: Path) -> list[Path]:
    return sorted(f for pat in WEIGHT_PATTERNS for f in path.glob(pat) if f.is_file())


def _check_safetensors(file: Path) -> None:
    size = file.stat().st_size
    with open(file, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise MembenchError(f"weights file {file} is truncated ({size} bytes, no safetensors header)", _FIX)
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise MembenchError(f"weights file {file} is truncated: its header alone needs {n + 8:,} bytes "
                                f"and the file has {size:,}", _FIX)
        try:
            header = json.loads(fh.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MembenchError(f"weights file {file} is not a safetensors file (unreadable header)", _FIX) from None
    ends = [int(v["data_offsets"][1]) for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    expected = 8 + n + max(ends, default=0)
    if size < expected:
        raise MembenchError(f"weights file {file} is truncated: {size:,} of {expected:,} bytes", _FIX)


def _check_bin(file: Path) -> None:
    with open(file, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PK\x03\x04" and not zipfile.is_zipfile(file):  # torch.save's zip format, cut short
        raise MembenchError(f"weights file {file} is truncated (its zip directory is missing)", _FIX)


def check_model_dir(target: str) -> Path:
    """The resolved folder, after every check of the module docstring (MembenchError else)."""
    path = Path(target).expanduser()
    if not path.exists():
        raise MembenchError(f"model directory {target} does not exist",
                            "pass a folder written by save_pretrained, or a registry id (`membench targets list`)")
    if not path.is_dir():
        raise MembenchError(f"{target} is a file, not a model directory", "pass the folder that holds config.json")
    path = path.resolve()
    config = path / "config.json"
    if not config.is_file():
        raise MembenchError(f"model directory {target} has no config.json", _FIX)
    try:
        json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MembenchError(f"{config} is not valid JSON", _FIX) from None
    if not any(all((path / f).is_file() for f in group) for group in TOKENIZER_SETS):
        raise MembenchError(
            f"model directory {target} has no tokenizer (none of tokenizer.json, vocab.json + merges.txt, "
            "vocab.txt, tokenizer.model, spiece.model)",
            "save it beside the model: tokenizer.save_pretrained(DIR)")
    for index in INDEX_FILES:
        if (path / index).is_file():
            try:
                shards = set(json.loads((path / index).read_text())["weight_map"].values())
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
                raise MembenchError(f"{path / index} is not a valid weights index", _FIX) from None
            missing = sorted(s for s in shards if not (path / s).is_file())
            if missing:
                raise MembenchError(f"model directory {target} lacks weight shard(s) {', '.join(missing)} "
                                    f"named by {index}", _FIX)
    files = weight_files(path)
    if not files:
        raise MembenchError(f"model directory {target} has no weights file (*.safetensors or *.bin)", _FIX)
    for file in files:
        (_check_safetensors if file.suffix == ".safetensors" else _check_bin)(file)
    return path


def weights_hash(path: Path) -> str:
    """SHA-256 over the weight files (the same value a loaded target records), from the
    per-file memo of ``fingerprint`` (re-read only when a file's size or mtime changed)."""
    return FileHashes(path).folder_hash(WEIGHT_PATTERNS)


def public_id(path: Path, name: str | None = None) -> str:
    """How a local folder is named in results: ``name``, else ``local/<folder>-<hash8>``."""
    if name:
        return name
    folder = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.name) or "model"
    return f"local/{folder}-{weights_hash(path)[:8]}"
