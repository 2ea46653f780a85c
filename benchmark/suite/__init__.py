"""The suite: declared splits, their materialization, loading and verification.

Public face: ``get_split``, ``match_splits``, ``splits`` (registry), ``fetch`` (materialize from
the Hub or a local copy), ``ensure`` (materialize if it can be done offline, then load),
``load``, ``verify``, ``freeze``, ``status``, ``Split``, ``SplitSpec``, ``make_uid``,
``register_split`` (a split kept under MEMBENCH_HOME, see ``benchmark.registered``),
``add_local_split`` / ``remove_split`` (a researcher's own file as a split: ``membench suite
add``), ``missing_parents`` (what a control still needs before it can be built offline),
``calibration`` (named, seeded calibration subsets disjoint from the evaluated rest by uid and
by near-duplicates: ``calibration.subsets``, ``calibration.select``), ``user_level`` (user-level
splits: ``user_level.rows`` a group scorer sees, ``user_level.labels`` of the users).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .. import registered
from ..errors import MembenchError
from ..hashing import sha256_file
from ..home import locked
from . import calibration, readers, sources, user_level
from . import lock as lockfile
from .registry import SplitSpec, get_split, match_splits, register_split, shipped, splits
from .store import Split, is_materialized, load, make_uid, materialize, read_manifest, split_dir
from .verify import status, verify_split


def _offline_buildable(spec: SplitSpec) -> bool:
    """Built without any download: its kind builds offline and its parents (if any) are at hand."""
    return spec.source_model.offline() and not missing_parents(spec)


def missing_parents(spec: SplitSpec) -> list[str]:
    """The splits a derived split (a control) is built from, directly or through other derived
    splits, that are not materialized and cannot be built offline: fetch these first. Empty for
    other splits."""
    out: list[str] = []
    for parent in spec.source_model.parents():
        if is_materialized(parent):
            continue
        pspec = get_split(parent)
        if pspec.source_model.parents():
            out += [p for p in missing_parents(pspec) if p not in out]
        elif not pspec.source_model.offline() and parent not in out:
            out.append(parent)
    return out


def _local_only(spec: SplitSpec) -> bool:
    """Content that depends on the local Python (the demo's pydoc text), directly or through a parent."""
    return spec.source_model.local_only or any(_local_only(get_split(p)) for p in spec.source_model.parents())


def _parent_of(spec: SplitSpec):
    """Loads a parent of ``spec``, building it first when that can be done offline."""

    def parent(split_id: str) -> Split:
        if not is_materialized(split_id) and not _offline_buildable(get_split(split_id)):
            raise MembenchError(
                f"control {spec.id} is built from {split_id}, which is not materialized",
                f"run `membench suite fetch {split_id}` first (with --from-dir if offline)",
            )
        return ensure(split_id)

    return parent


def fetch(split_id: str, from_dir=None, *, force: bool = False) -> Split:
    """Materialize a split from its source (``sources``: the Hub at its pinned revision or
    ``from_dir``, a local copy of the same files; built offline for the demo; derived from its
    parents for a control), then load it. An already materialized split is reloaded unless
    ``force``."""
    spec = get_split(split_id)
    with locked(f"split-{split_id}"):
        if is_materialized(split_id) and not force:
            return load(spec)
        parts = spec.source_model.build(spec, from_dir=from_dir, parent=_parent_of(spec))
        return materialize(spec, parts.members, parts.nonmembers, source=parts.source, neighbors=parts.neighbors,
                           notes=parts.notes, extra_files=parts.extra_files or None, groups=parts.groups)


LOCAL_FILE = "local_file"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)*")


def add_local_split(
    split_id: str,
    path,
    *,
    text_field: str | None = None,
    label_field: str | None = None,
    valid_for=(),
    config: str | None = None,
    track: str = "custom",
    description: str | None = None,
    replace: bool = False,
) -> Split:
    """Register a researcher's own labelled file as the split ``split_id`` (under
    MEMBENCH_HOME, never in the package) and materialize it like any registry split: the same
    uids, deduplication, manifest and hashes. ``valid_for``: target ids or glob patterns for
    which the labels are membership ground truth. Nothing is registered when the file cannot
    be read into a split."""
    if not _ID.fullmatch(split_id or ""):
        raise MembenchError(f"{split_id!r} is not a usable split id",
                            "use letters, digits, '.', '_', '+', '-', with '/' between parts, e.g. mylab/forum-2024")
    if split_id in shipped():
        raise MembenchError(f"split id {split_id} belongs to the shipped registry", "choose another id")
    if split_id in splits() and not replace:
        raise MembenchError(f"split {split_id} is already registered",
                            f"choose another id, or replace it: membench suite add {split_id} --file ... --replace")
    path = Path(path).expanduser().resolve()
    frame = sources.read_local_table(path, config)  # read once now: a bad file registers nothing
    text_field = text_field or sources.default_text_field(frame, path)
    label_field = label_field or "label"
    members, nonmembers = readers.labelled_texts(frame, path, text_field, label_field)
    if not members or not nonmembers:
        raise MembenchError(f"{path}: {len(members)} members and {len(nonmembers)} non-members; a split needs both",
                            f"label members 1 and non-members 0 in the '{label_field}' column")
    entry = {
        "id": split_id,
        "family": "local",
        "track": track,
        "domain": "local",
        "source": {"kind": LOCAL_FILE, "path": str(path), "config": config,
                   "sha256": sha256_file(path) if path.is_file() else None},
        "fields": {"text": text_field, "label": label_field, "member_value": 1},
        "valid_targets": list(valid_for),
        "label_meaning": f"membership as declared by the file's '{label_field}' column (1 = member)",
        "description": description or f"A researcher's own split from the file {path.name}.",
    }
    before = next((e for e in registered.entries("splits") if e["id"] == split_id), None)
    spec = register_split(entry, replace=replace)
    try:
        return fetch(spec.id, force=True)
    except BaseException:  # leave the registry as it was
        if before is not None:
            registered.add("splits", before, replace=True)
        else:
            registered.remove("splits", split_id)
        raise


def remove_split(split_id: str) -> list[str]:
    """Forget a split registered under MEMBENCH_HOME and delete its materialized files
    (a shipped split cannot be removed). Returns what was removed."""
    if split_id in shipped():
        raise MembenchError(f"split {split_id} is part of the shipped registry", "only registered splits can be removed")
    get_split(split_id)  # unknown ids: one line with the closest ones
    removed = []
    if registered.remove("splits", split_id):
        removed.append(str(registered.entry_file("splits", split_id)))
    folder = split_dir(split_id)
    if folder.exists():
        shutil.rmtree(folder)
        removed.append(str(folder))
    return removed


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
        if spec.kind == LOCAL_FILE:
            skipped[spec.id] = "a researcher's own split (registered under MEMBENCH_HOME), not part of the shipped lock"
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
    "LOCAL_FILE",
    "Split",
    "SplitSpec",
    "add_local_split",
    "calibration",
    "user_level",
    "ensure",
    "fetch",
    "freeze",
    "get_split",
    "is_materialized",
    "load",
    "make_uid",
    "match_splits",
    "missing_parents",
    "register_split",
    "remove_split",
    "split_dir",
    "splits",
    "status",
    "verify",
]
