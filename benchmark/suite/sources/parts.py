"""What a source kind gives: a split's member and non-member texts, before normalization."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...hashing import sha256_file, sha256_files


@dataclass
class Parts:
    """Members, non-members, optional neighbours and provenance; ``store.materialize`` puts
    them on disk in the one normalized shape of every split."""

    members: list[str]
    nonmembers: list[str]
    source: dict
    neighbors: dict[str, list[str]] | None = None  # text -> its stored neighbours
    notes: dict = field(default_factory=dict)  # extra manifest entries (e.g. overlap dropped)
    extra_files: dict = field(default_factory=dict)  # file name -> table written beside the split
    groups: dict[str, str] | None = None  # text -> its natural group (a book, an author), where the source has one


def file_hashes(paths) -> dict:
    """SHA-256 of each source file (of every file below a folder, for a folder), by its name."""
    out = {}
    for rel, path in paths.items():
        if path is not None:
            p = Path(path)
            out[rel] = sha256_file(p) if p.is_file() else sha256_files(f for f in p.rglob("*") if f.is_file())
    return out
