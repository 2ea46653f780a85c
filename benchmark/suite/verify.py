"""Verification of materialized splits against their manifests and the lock file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import MembenchError
from ..hashing import sha256_json
from . import lock as lockfile
from .registry import SplitSpec
from .store import (
    NEIGHBORS_FILE,
    VERIFIED_STAMP,
    content_hash,
    neighbors_hash,
    read_manifest,
    split_dir,
    verify_files,
)


def _stat(path: Path, manifest: dict) -> dict:
    names = ["manifest.json", *manifest.get("files", {})]
    return {n: [(path / n).stat().st_size, (path / n).stat().st_mtime_ns] for n in names if (path / n).exists()}


def verify_split(spec: SplitSpec, lock: dict | None = None) -> dict:
    """Recompute every hash of a materialized split; report ``ok`` or what differs.

    Checks, in order: each file's SHA-256 against the manifest (naming any file that differs or
    is missing), the content hash and uid-list hash recomputed from the rows, the neighbour hash,
    and the lock file's entry for the split when it has one.
    """
    path = split_dir(spec.id)
    report = {"id": spec.id, "status": "ok", "problems": [], "files_differ": [], "locked": False}
    if not (path / "manifest.json").exists():
        report.update(status="not fetched", problems=[f"not materialized; run `membench suite fetch {spec.id}`"])
        return report
    try:
        manifest = read_manifest(path)
    except MembenchError as exc:
        report.update(status="mismatch", problems=[str(exc)], files_differ=[str(path / "manifest.json")])
        return report
    bad = verify_files(path, manifest)
    report["files_differ"] = bad
    report["problems"] += [f"{f} differs from its manifest hash (or is missing)" for f in bad]
    data_ok = not any(Path(f).name in ("samples.parquet", "labels.parquet") for f in bad)
    if data_ok:
        samples = pd.read_parquet(path / "samples.parquet")
        labels = pd.read_parquet(path / "labels.parquet")
        if content_hash(samples, labels) != manifest.get("content_hash"):
            report["problems"].append(f"{path / 'manifest.json'}: content_hash does not match the rows")
            report["files_differ"].append(str(path / "manifest.json"))
        if sha256_json(sorted(samples["uid"])) != manifest.get("uid_list_sha256"):
            report["problems"].append(f"{path / 'manifest.json'}: uid_list_sha256 does not match the rows")
    if NEIGHBORS_FILE in manifest.get("files", {}) and str(path / NEIGHBORS_FILE) not in bad:
        if neighbors_hash(pd.read_parquet(path / NEIGHBORS_FILE)) != manifest.get("neighbors_sha256"):
            report["problems"].append(f"{path / 'manifest.json'}: neighbors_sha256 does not match {NEIGHBORS_FILE}")
    for parent_id, parent_hash in manifest.get("source", {}).get("parents", {}).items():
        parent_manifest = split_dir(parent_id) / "manifest.json"
        if parent_manifest.exists() and read_manifest(parent_manifest.parent).get("content_hash") != parent_hash:
            report["problems"].append(
                f"built from an older {parent_id} (its content hash changed since): "
                f"run `membench suite fetch {spec.id} --force`"
            )
    entry = (lock or {}).get("splits", {}).get(spec.id)
    if entry:
        report["locked"] = True
        diffs = lockfile.compare(manifest, entry)
        report["problems"] += [f"{spec.id}: {d} ({lockfile.lock_path()})" for d in diffs]
    if report["problems"]:
        report["status"] = "mismatch"
        # remembered, so that `suite list` says "corrupt" until the split is fetched again
        stamp = {"failed": True, "problems": report["problems"][:3], "stat": _stat(path, manifest)}
    else:
        stamp = {"content_hash": manifest["content_hash"], "locked": report["locked"], "stat": _stat(path, manifest)}
    (path / VERIFIED_STAMP).write_text(json.dumps(stamp) + "\n")
    report["content_hash"] = manifest.get("content_hash")
    return report


def status(spec: SplitSpec) -> str:
    """``not fetched``; ``verified`` (verified and unchanged since); ``corrupt`` (the manifest
    is unreadable, or a file is missing or differs from its manifest hash: `suite verify`
    names it, `suite fetch --force` rebuilds it); else ``fetched`` (files match the manifest,
    not yet checked by `suite verify` against rows and the lock file)."""
    path = split_dir(spec.id)
    if not (path / "manifest.json").exists():
        return "not fetched"
    try:
        manifest = read_manifest(path)
    except MembenchError:
        return "corrupt"
    stamp_file = path / VERIFIED_STAMP
    if stamp_file.exists():
        try:
            stamp = json.loads(stamp_file.read_text())
            if stamp.get("failed"):
                return "corrupt"  # failed `suite verify`; a new fetch writes a new folder
            if stamp.get("stat") == _stat(path, manifest):
                return "verified"
        except (json.JSONDecodeError, OSError):
            pass
    return "corrupt" if verify_files(path, manifest) else "fetched"
