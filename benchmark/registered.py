"""Entries registered at run time, beside the registries shipped in the package.

A researcher's own split (``membench suite add``), a fine-tuned target and its split
(``membench finetune``) are registry entries like the shipped ones, but they live under
``$MEMBENCH_HOME/registry/<kind>/`` (one YAML file per entry), never inside the package, so
editing ``splits.yaml`` is never needed. ``suite.registry`` and ``targets.registry`` merge
them with the shipped entries; a registered id may never shadow a shipped one.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .errors import MembenchError
from .home import registry_dir

KINDS = ("splits", "targets")


def _folder(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}")
    return registry_dir(kind)


def entry_file(kind: str, entry_id: str) -> Path:
    """The file that holds a registered entry (``/`` in the id becomes ``__``)."""
    if not entry_id or any(part in ("", ".", "..") for part in entry_id.split("/")):
        raise MembenchError(f"{entry_id!r} is not a valid id", "use letters, digits, '-', '_', '.' and '/'")
    return _folder(kind) / (entry_id.replace("/", "__") + ".yaml")


def entries(kind: str) -> list[dict]:
    """Every registered entry of ``kind``, in file-name order; an unreadable file is an error
    that names it (it is never silently skipped)."""
    out = []
    for path in sorted(_folder(kind).glob("*.yaml")):
        try:
            entry = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise MembenchError(f"registered {kind[:-1]} file {path} is not valid YAML ({exc})",
                                "fix or delete the file") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise MembenchError(f"registered {kind[:-1]} file {path} holds no entry with an `id`",
                                "fix or delete the file")
        out.append(entry)
    return out


def add(kind: str, entry: dict, *, replace: bool = False) -> Path:
    """Write one entry (atomically); refuse to replace an existing one unless ``replace``."""
    path = entry_file(kind, entry["id"])
    if path.exists() and not replace:
        raise MembenchError(f"{kind[:-1]} {entry['id']} is already registered ({path})",
                            "choose another id, or remove the old entry first")
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(yaml.safe_dump(entry, sort_keys=False, allow_unicode=True))
    tmp.replace(path)
    return path


def remove(kind: str, entry_id: str) -> bool:
    path = entry_file(kind, entry_id)
    if path.exists():
        path.unlink()
        return True
    return False
