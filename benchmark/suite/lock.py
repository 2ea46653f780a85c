"""The suite lock file: the content hash of every frozen split, kept in the repository.

``benchmark/suite/suite.lock`` (JSON, shipped with the package) maps a split id to the
writer-independent content hash of its (uid, text, label) rows, the hash of its sorted uid
list, its counts, its neighbour hash where it has neighbours, and the Hub commit it was fetched
from when it came from the Hub. ``membench suite freeze`` writes it; ``membench suite verify``
checks every materialized split against it wherever it has an entry; Hub fetches use the
pinned commit. ``MEMBENCH_SUITE_LOCK`` points at another lock file (tests, forks).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import MembenchError

DEFAULT_LOCK = Path(__file__).with_name("suite.lock")
LOCK_VERSION = 1
LOCKED_KEYS = ("content_hash", "uid_list_sha256", "neighbors_sha256")


def lock_path(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get("MEMBENCH_SUITE_LOCK") or DEFAULT_LOCK)


def read_lock(path: str | Path | None = None) -> dict:
    path = lock_path(path)
    if not path.exists():
        return {"version": LOCK_VERSION, "splits": {}}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MembenchError(
            f"lock file {path}: line {exc.lineno}: not valid JSON ({exc.msg})",
            "restore it from git (`git show HEAD:benchmark/suite/suite.lock`)",
        ) from None
    if not isinstance(data.get("splits"), dict):
        raise MembenchError(f"lock file {path} has no 'splits' table", "restore it from git")
    return data


def entry_for(manifest: dict) -> dict:
    """What the lock keeps of a split's manifest."""
    src = manifest.get("source", {})
    entry = {key: manifest[key] for key in LOCKED_KEYS if key in manifest}
    entry["counts"] = manifest["counts"]
    entry["duplicates_dropped"] = manifest.get("duplicates_dropped", 0)
    if src.get("resolved_commit"):
        entry["hub_commit"] = src["resolved_commit"]
    return entry


def write_lock(entries: dict[str, dict], path: str | Path | None = None) -> Path:
    """Merge ``entries`` into the lock file (entries of splits not given are kept)."""
    path = lock_path(path)
    data = read_lock(path)
    for split_id, entry in entries.items():
        old = data["splits"].get(split_id, {})
        if "hub_commit" in old and "hub_commit" not in entry:
            entry = {**entry, "hub_commit": old["hub_commit"]}  # a local copy keeps the pin
        data["splits"][split_id] = entry
    data["version"] = LOCK_VERSION
    data["splits"] = dict(sorted(data["splits"].items()))
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def compare(manifest: dict, entry: dict) -> list[str]:
    """Differences between a split's manifest and its lock entry, one phrase each."""
    problems = []
    for key in LOCKED_KEYS:
        if key in entry and manifest.get(key) != entry[key]:
            problems.append(f"{key} {str(manifest.get(key))[:12]}… differs from the lock's {entry[key][:12]}…")
    return problems
