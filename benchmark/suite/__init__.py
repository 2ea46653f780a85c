"""The suite: declared splits, their materialization, loading and verification.

Public face: ``get_split``, ``match_splits``, ``splits`` (registry), ``fetch`` (materialize from
the Hub or a local copy), ``ensure`` (materialize if it can be done offline, then load),
``load``, ``verify``, ``freeze``, ``status``, ``Split``, ``SplitSpec``, ``make_uid``,
``register_split`` (a split kept under MEMBENCH_HOME, see ``benchmark.registered``).
"""

from __future__ import annotations

import pandas as pd

from ..errors import MembenchError
from ..home import locked
from . import demo, loaders, sources
from . import lock as lockfile
from .registry import SplitSpec, get_split, match_splits, register_split, splits
from .store import Split, is_materialized, load, make_uid, materialize, read_manifest, split_dir
from .verify import status, verify_split


def build_builtin(spec: SplitSpec) -> Split:
    """Materialize a split that membench makes itself (no download)."""
    source = spec.source
    if source.get("builder") == "pydoc":
        parts = demo.build(demo.secret_seed(spec.id) if source["seed"] == "secret" else int(source["seed"]))
        pool = pd.DataFrame({"text": parts["pool"]})
        return materialize(
            spec,
            parts["members"],
            parts["nonmembers"],
            source={**source, "text_from": "pydoc_data.topics"},
            extra_files={"pool.parquet": pool},
        )
    raise MembenchError(f"split {spec.id}: no builder named {source.get('builder')!r}")


def _offline_buildable(spec: SplitSpec) -> bool:
    """Built without any download: builtin splits, and controls whose parents are at hand."""
    if spec.kind == "builtin":
        return True
    if spec.kind == "control":
        return all(is_materialized(p) or _offline_buildable(get_split(p)) for p in loaders.parent_ids(spec))
    return False


def _local_only(spec: SplitSpec) -> bool:
    """Builtin splits and controls derived from them: content depends on the local Python."""
    if spec.kind == "builtin":
        return True
    return spec.kind == "control" and any(_local_only(get_split(p)) for p in loaders.parent_ids(spec))


def _build_control(spec: SplitSpec) -> Split:
    def parent(split_id: str) -> Split:
        pspec = get_split(split_id)
        if not is_materialized(split_id) and not _offline_buildable(pspec):
            raise MembenchError(
                f"control {spec.id} is built from {split_id}, which is not materialized",
                f"run `membench suite fetch {split_id}` first (with --from-dir if offline)",
            )
        return ensure(split_id)

    parts = loaders.load_control(spec, parent)
    return materialize(spec, parts.members, parts.nonmembers, source=parts.source, notes=parts.notes)


def fetch(split_id: str, from_dir=None, *, force: bool = False) -> Split:
    """Materialize a split from the Hub (pinned revision) or from ``from_dir``, then load it.

    Builtin splits are built, controls are derived from their parents; ``from_dir`` applies
    to splits with a Hub source. An already materialized split is reloaded unless ``force``.
    """
    spec = get_split(split_id)
    with locked(f"split-{split_id}"):
        if is_materialized(split_id) and not force:
            return load(spec)
        if spec.kind == "builtin":
            return build_builtin(spec)
        if spec.kind == "control":
            return _build_control(spec)
        pinned = lockfile.read_lock().get("splits", {}).get(split_id, {}).get("hub_commit")
        files = sources.files_for(spec, from_dir, revision=pinned)
        if spec.kind == "mimir":
            parts = loaders.load_mimir(spec, files)
        elif spec.kind == "hf_dataset":
            parts = loaders.load_hf_dataset(spec, files)
        else:
            raise MembenchError(f"split {spec.id}: unknown source kind {spec.kind!r}", "fix splits.yaml")
        parts.source["registry_revision"] = spec.source.get("revision")
        parts.source.setdefault("revision", None)  # the loaders spread files.describe(); a local copy has none
        return materialize(
            spec, parts.members, parts.nonmembers, source=parts.source, neighbors=parts.neighbors, notes=parts.notes
        )


def ensure(split_id: str) -> Split:
    """Load a split, building it first when membench can make it offline (builtin splits and
    controls whose parents are materialized)."""
    spec = get_split(split_id)
    if not is_materialized(split_id) and _offline_buildable(spec):
        return fetch(split_id)
    return load(spec)


def verify(specs=None) -> list[dict]:
    """Verify materialized splits (all of them when ``specs`` is None) against manifests and
    the lock file."""
    lock = lockfile.read_lock()
    chosen = list(splits().values()) if specs is None else list(specs)
    reports = [verify_split(spec, lock) for spec in chosen]
    if specs is None:
        reports = [r for r in reports if r["status"] != "not fetched"]
    return reports


def freeze(specs=None, path=None) -> dict:
    """Write the content hashes of materialized splits (all of them when ``specs`` is None)
    into the lock file. A split whose files do not match its manifest is refused. The demo
    split is cut from the local Python's documentation text, so it is not frozen."""
    chosen = list(splits().values()) if specs is None else list(specs)
    entries, skipped = {}, {}
    for spec in chosen:
        if not is_materialized(spec.id):
            skipped[spec.id] = "not materialized"
            continue
        if _local_only(spec):
            skipped[spec.id] = "built from this Python's pydoc text, which differs across Python versions"
            continue
        report = verify_split(spec, None)
        if report["status"] != "ok":
            raise MembenchError(
                f"split {spec.id} does not match its manifest: {report['problems'][0]}",
                f"fetch it again with `membench suite fetch {spec.id} --force` before freezing",
            )
        entries[spec.id] = lockfile.entry_for(read_manifest(split_dir(spec.id)))
    written = lockfile.write_lock(entries, path) if entries else lockfile.lock_path(path)
    return {"lock": str(written), "frozen": entries, "skipped": skipped}


__all__ = [
    "Split",
    "SplitSpec",
    "ensure",
    "fetch",
    "freeze",
    "get_split",
    "is_materialized",
    "load",
    "make_uid",
    "match_splits",
    "register_split",
    "split_dir",
    "splits",
    "status",
    "verify",
]
