"""Result files and the results store.

One JSON record per key (``naming``), validated by the record models (``records``); per-sample
scores beside it as parquet, referenced by SHA-256. File names are derived from the record's
whole key, so two keys never share a file::

    <split id>/<target slug>[@<revision>]/<scorer slug>-<key hash>.json
    <split id>/<target slug>[@<revision>]/<scorer slug>-<key hash>.scores.parquet

Writing a record whose key is already stored replaces it, says so (a warning naming the file
and what changed) and keeps the previous record and its per-sample file under
``<results>/_history/`` (a rerun that changes nothing but the time it was made is not kept).
A record of another kind (attack, blind baseline, submission) or owner is never replaced.

Folders whose name starts with ``_`` (``_diagnostics/``, ``_history/``) hold other files and are
skipped. ``ResultsStore.scan`` is what readers (the site, the API) use: it refuses (and
reports, naming the file and the field) every file that is not JSON, breaks the record model,
whose per-sample file is missing or does not match its hash, or that repeats the key of a file
already accepted; with ``require_gate`` also every record that has not been through the
publication gate (``benchmark.results.gate``) or was changed after it. Recomputing figures
from labels is the gate's, not the store's.

``migrate`` re-keys a folder: every record file is moved to the name its whole key gives
(records written under earlier keys, or before names carried a key).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import MembenchError
from ..hashing import sha256_file, sha256_json
from .naming import (
    GROUP_UNIT,
    candidates,
    coarse_key,
    coarse_path,
    folder_of,
    history_dir,
    key_parts,
    make_key,
    path_for,
    record_key,
    scores_path,
)
from .records import GATE_BLOCKS, SCHEMA_VERSION, problems

log = logging.getLogger(__name__)

# Fields that differ between two runs that produced the same figures: a rewrite that changes
# only these replaces nothing worth keeping.
VOLATILE = (("provenance", "created_at"), ("provenance", "derived_at"))


def _problem(path, record) -> MembenchError | None:
    errors = problems(record)
    if not errors:
        return None
    fld, message = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return MembenchError(
        f"result file {path}: field '{fld}': {message}{more}",
        "fix the producer, or regenerate the file with `membench run`",
    )


def content_digest(record: dict) -> str:
    """SHA-256 of a record as the publication gate checks it: everything but the gate's own
    blocks. The gate stamps it; readers compare it, so a record changed after the gate is
    refused."""
    return sha256_json({k: v for k, v in record.items() if k not in GATE_BLOCKS})


def _substance(record: dict) -> dict:
    """What a rewrite must keep to replace nothing: the record without the gate's blocks, the
    times it was made and the per-sample file's name (its content hash stays)."""
    out = {k: v for k, v in record.items() if k not in GATE_BLOCKS}
    if isinstance(out.get("per_sample"), dict):
        out["per_sample"] = {k: v for k, v in out["per_sample"].items() if k != "file"}
    for block, name in VOLATILE:
        if isinstance(out.get(block), dict) and name in out[block]:
            out[block] = {k: v for k, v in out[block].items() if k != name}
    return out


def replacement_problem(old: dict, new: dict) -> str | None:
    """Why ``new`` may not replace ``old`` under the same key: it is of another kind
    (attack, blind baseline, submission) or has another owner (None when it may)."""
    o, n = old.get("scorer") or {}, new.get("scorer") or {}
    o_owner, n_owner = o.get("owner") or "maintainers", n.get("owner") or "maintainers"
    if o.get("kind") != n.get("kind") or o_owner != n_owner:
        return f"it holds a {o.get('kind')} record of {o_owner}, this is a {n.get('kind')} record of {n_owner}"
    return None


def _what_changed(old: dict, new: dict) -> str:
    parts = []
    o, n = (old.get("metrics") or {}).get("auc"), (new.get("metrics") or {}).get("auc")
    if o != n:
        parts.append(f"AUC {o if o is None else f'{o:.4f}'} -> {n if n is None else f'{n:.4f}'}")
    oc, nc = (old.get("scorer") or {}).get("code_sha256"), (new.get("scorer") or {}).get("code_sha256")
    if oc != nc:
        parts.append(f"code {str(oc)[:12]} -> {str(nc)[:12]}")
    if (old.get("per_sample") or {}).get("sha256") != (new.get("per_sample") or {}).get("sha256") and not parts:
        parts.append("per-sample scores changed")
    return ", ".join(parts) or "provenance changed"


@dataclass(frozen=True)
class Replaced:
    """A record that a write replaced: where it was, where the previous version is kept, and
    what changed."""

    path: Path
    kept: Path
    change: str

    def __str__(self) -> str:
        return f"replaced result {self.path} (same key): {self.change}; the previous record is kept in {self.kept}"


def _keep(results_dir: Path, path: Path, record: dict) -> Path:
    """Move a record file and its per-sample file into the history; return the kept record."""
    folder = history_dir(results_dir, path)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = str((record.get("provenance") or {}).get("created_at") or "undated")
    name = f"{len(list(folder.glob('*.json'))):04d}-{''.join(c if c.isalnum() else '-' for c in stamp)}"
    per_sample = (record.get("per_sample") or {}).get("file")
    if per_sample and "/" not in per_sample and "\\" not in per_sample and (path.parent / per_sample).is_file():
        shutil.move(str(path.parent / per_sample), folder / f"{name}.scores.parquet")
        record = {**record, "per_sample": {**record["per_sample"], "file": f"{name}.scores.parquet"}}
    kept = folder / f"{name}.json"
    kept.write_text(json.dumps(record, indent=2) + "\n")
    path.unlink(missing_ok=True)
    return kept


def _atomic_json(path: Path, record: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def _same_key(results_dir: Path, path: Path, record: dict) -> list[tuple[Path, dict]]:
    """Stored records of ``record``'s key: its own file, and any file of an earlier naming that
    holds the same key (an unreadable file at ``path`` counts, and is simply replaced)."""
    key = record_key(record)
    folder = folder_of(results_dir, record["split"]["id"], record["target"]["id"], record["target"].get("revision"))
    scorer = record["scorer"]["name"]
    sub = (record.get("evaluation_subset") or {}).get("name")
    found = []
    for other in candidates(folder, scorer, sub, "group" if record.get("kind") == "group" else None):
        try:
            old = _load_json(other)
            same = record_key(old) == key
        except (MembenchError, KeyError, TypeError, AttributeError):
            old, same = None, other == path
        if other == path and not same and old is not None:
            # only a truncated-hash collision gets here
            raise MembenchError(f"result file {path} already holds another key ({record_key(old)}); "
                                f"{key} maps to the same file", "rename the scorer or target so their keys differ")
        if same:
            found.append((other, old))
    return found


def write(results_dir: Path, record: dict, uids, scores, columns: dict | None = None) -> Path:
    """Write a record and its per-sample scores (plus ``columns``, e.g. a per-sample
    ``truncated`` flag); refuse a record that breaks the record model."""
    return write_record(results_dir, record, uids, scores, columns)[0]


def write_record(results_dir: Path, record: dict, uids, scores, columns: dict | None = None) -> tuple[Path, dict]:
    """``write``, returning the file and the record as written (what ``read`` of it gives: the
    schema version and the per-sample file filled in). A stored record of the same key is
    replaced, with a warning saying what changed, and kept in the history."""
    path, written, _ = store_record(results_dir, record, uids, scores, columns)
    return path, written


def store_record(results_dir: Path, record: dict, uids, scores,
                 columns: dict | None = None) -> tuple[Path, dict, list[Replaced]]:
    """``write_record``, also returning what it replaced."""
    results_dir = Path(results_dir)
    record = {k: v for k, v in record.items() if k not in GATE_BLOCKS}  # the gate writes those, not producers
    path = path_for(results_dir, record)
    existing = _same_key(results_dir, path, record)
    for other, old in existing:
        problem = replacement_problem(old, record) if old is not None else None
        if problem:
            raise MembenchError(f"result file {other} is not replaced: {problem}",
                                "a record is replaced only by one of the same kind and owner")
    path.parent.mkdir(parents=True, exist_ok=True)
    scores_file = scores_path(path)
    tmp_scores = scores_file.with_name(scores_file.name + ".tmp")
    pd.DataFrame({"uid": list(uids), "score": list(scores), **(columns or {})}).to_parquet(tmp_scores, index=False)
    record = dict(record)
    record["schema"] = SCHEMA_VERSION
    record["per_sample"] = {"file": scores_file.name, "sha256": sha256_file(tmp_scores)}
    written = json.loads(json.dumps(record, default=str))
    problem = _problem(path, written)
    if problem is not None:
        tmp_scores.unlink()
        raise problem
    replaced = []
    for other, old in existing:
        if old is None:
            other.unlink(missing_ok=True)
            continue
        if _substance(old) == _substance(written):
            _remove(other, old, keep_scores=other == path)
            continue
        kept = _keep(results_dir, other, old)
        replaced.append(Replaced(other, kept, _what_changed(old, written)))
        log.warning("%s", replaced[-1])
    tmp_scores.replace(scores_file)
    _atomic_json(path, written)
    return path, written, replaced


def _remove(path: Path, record: dict, keep_scores: bool = False) -> None:
    per_sample = (record.get("per_sample") or {}).get("file")
    path.unlink(missing_ok=True)
    if not keep_scores and per_sample and "/" not in per_sample and "\\" not in per_sample:
        (path.parent / per_sample).unlink(missing_ok=True)


def read_per_sample(path: Path, record: dict | None = None) -> pd.DataFrame:
    """The per-sample table of the record file at ``path``, indexed by uid: ``score`` and any
    further columns written with it (e.g. ``truncated``)."""
    record = record if record is not None else read(path)
    return pd.read_parquet(Path(path).parent / record["per_sample"]["file"]).set_index("uid")


def read_scores(path: Path, record: dict | None = None) -> pd.Series:
    """The per-sample scores of the record file at ``path`` (a Series indexed by uid)."""
    return read_per_sample(path, record)["score"]


def _parse(path: Path) -> tuple[dict | None, "Rejected | None"]:
    """(record, None), or (None, why the file cannot even be read as a record)."""
    try:
        record = json.loads(Path(path).read_bytes().decode("utf-8"))
    except json.JSONDecodeError as exc:
        return None, Rejected(Path(path), "<file>", f"not valid JSON ({exc.msg}, line {exc.lineno})")
    except UnicodeDecodeError:
        return None, Rejected(Path(path), "<file>", "not UTF-8 text")
    except OSError as exc:
        return None, Rejected(Path(path), "<file>", f"cannot be read ({exc.strerror})")
    if not isinstance(record, dict):
        return None, Rejected(Path(path), "<record>", "not a JSON object")
    return record, None


def _load_json(path: Path) -> dict:
    record, problem = _parse(path)
    if problem is not None:
        raise MembenchError(f"result file {problem}")
    return record


def read(path: Path) -> dict:
    """One record, checked against the record model (raises MembenchError naming file and field)."""
    record = _load_json(path)
    problem = _problem(path, record)
    if problem is not None:
        raise problem
    return record


def result_files(root: Path):
    """Every record file under ``root`` in path order (``_`` and ``.`` folders skipped)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("_") and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".json"):
                yield Path(dirpath) / name


def iter_records(results_dir: Path):
    """(path, record) for every result file under ``results_dir``; raises on a bad file."""
    for path in result_files(Path(results_dir)):
        yield path, read(path)


def find(results_dir: Path, split: str, target: str, scorer: str, revision: str | None = None,
         subset: str | None = None, unit: str | None = None, **parts) -> Path | None:
    """The record file of (split, target, revision, scorer result name[, subset][, unit]) under
    ``results_dir``, with any further key part given (``dtype="bfloat16"``, ``context_rule=...``,
    see ``naming.key_parts``) matching too; None when there is none. Several matches are refused,
    naming the key parts that tell them apart."""
    want = make_key(split, target, revision, scorer, subset, unit)
    found = []
    for path in candidates(folder_of(results_dir, split, target, revision), scorer, subset, unit):
        try:
            record = _load_json(path)
            if coarse_key(record) != want:
                continue
            have = key_parts(record)
        except (MembenchError, KeyError, TypeError, AttributeError):
            continue
        if all(str(have.get(k)) == str(v) for k, v in parts.items()):
            found.append((path, have))
    if len(found) > 1:
        differ = sorted(k for k in found[0][1] if len({str(h[k]) for _, h in found}) > 1)
        raise MembenchError(
            f"{len(found)} records of {scorer} on {split} / {target} differ in {', '.join(differ)}",
            "name the one you mean by those key parts (e.g. dtype=..., context_rule=...)")
    return found[0][0] if found else None


def record_path(results_dir: Path, split: str, target: str, scorer: str, revision: str | None = None,
                subset: str | None = None, unit: str | None = None, **parts) -> Path:
    """``find``'s file; where no record matches, the path a record of the coarse key alone would
    take, which does not exist (so ``.is_file()`` says there is none)."""
    path = find(results_dir, split, target, scorer, revision, subset, unit, **parts)
    return path if path is not None else coarse_path(results_dir, split, target, scorer, revision, subset, unit)


@dataclass(frozen=True)
class Rejected:
    """A file the store refused: which file, which field, and why."""

    path: Path
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: field '{self.field}': {self.message}"

    def as_dict(self) -> dict:
        return {"path": str(self.path), "field": self.field, "message": self.message}


@dataclass
class Scan:
    """What a results folder holds: accepted (path, record) pairs and rejected files; of the
    accepted, which the gate recomputed from their per-sample scores and the split's labels
    (``recomputed``) and which it could not, with the reason (``not_recomputed``)."""

    records: list[tuple[Path, dict]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    recomputed: list[Path] = field(default_factory=list)
    not_recomputed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


NOT_GATED = "not through the publication gate"


class ResultsStore:
    """A results folder that accepts only valid, hash-consistent and unique result files (and,
    with ``require_gate``, only records the publication gate stamped, unchanged since)."""

    def __init__(self, root: Path, *, require_gate: bool = False):
        self.root = Path(root)
        self.require_gate = require_gate

    def check(self, path: Path, record: dict) -> Rejected | None:
        """Why ``record`` (read from ``path``) must be refused, or None when it is fine."""
        errors = problems(record)
        if errors:
            fld, message = errors[0]
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more problems)"
            return Rejected(path, fld, message)
        per_sample = Path(path).parent / record["per_sample"]["file"]
        if not per_sample.is_file():
            return Rejected(path, "per_sample.file", f"per-sample file {per_sample.name} is missing")
        digest = sha256_file(per_sample)
        if digest != record["per_sample"]["sha256"]:
            return Rejected(
                path,
                "per_sample.sha256",
                f"per-sample file {per_sample.name} has SHA-256 {digest[:12]}..., "
                f"the record says {record['per_sample']['sha256'][:12]}...",
            )
        if self.require_gate:
            stamp = record.get("gate")
            if not isinstance(stamp, dict):
                return Rejected(path, "gate", f"{NOT_GATED}: run `membench results validate {self.root}`")
            if stamp.get("content_sha256") != content_digest(record):
                return Rejected(path, "gate.content_sha256", "the record changed after the publication gate: "
                                f"run `membench results validate {self.root}`")
        return None

    def scan(self) -> Scan:
        out = Scan()
        if not self.root.is_dir():
            raise MembenchError(
                f"results folder {self.root} does not exist",
                "pass --results DIR, or run `membench run` / `make demo` first",
            )
        seen: dict[tuple, Path] = {}
        for path in result_files(self.root):
            record, problem = _parse(path)
            if problem is None:
                problem = self.check(path, record)
            if problem is None:
                key = record_key(record)
                if key in seen:
                    problem = Rejected(path, "<key>", f"duplicates {seen[key]} (the same key: {describe_key(record)})")
                else:
                    seen[key] = path
            if problem is None:
                out.records.append((path, record))
            else:
                out.rejected.append(problem)
        return out


def describe_key(record: dict) -> str:
    """The coarse key in words, for messages."""
    split, target, scorer = record["split"]["id"], record["target"]["id"], record["scorer"]["name"]
    rev = record["target"].get("revision")
    extra = [f"subset {s}" for s in [(record.get("evaluation_subset") or {}).get("name")] if s]
    if record.get("kind") == "group":
        extra.append(GROUP_UNIT)
    return ", ".join([f"split {split}", f"target {target}" + (f"@{rev}" if rev not in (None, "", "main") else ""),
                      f"scorer {scorer}"] + extra)


def migrate(results_dir: Path) -> list[tuple[Path, Path]]:
    """Move every readable record file under ``results_dir`` to the name its whole key gives
    (and its per-sample file beside it); return the (old, new) moves. Where the new name is
    taken by a record of the same key, the older of the two (by ``created_at``) goes to the
    history."""
    results_dir = Path(results_dir)
    moves = []
    for path in list(result_files(results_dir)):
        try:
            record = read(path)
            target = path_for(results_dir, record)
        except (MembenchError, KeyError, TypeError):
            continue  # refused files are reported by the scan, not moved
        if target == path:
            continue
        if target.is_file():
            other = _load_json(target)
            if record_key(other) == record_key(record):
                newer = str(record["provenance"].get("created_at")) > str(other["provenance"].get("created_at"))
                if not newer:
                    kept = _keep(results_dir, path, record)
                    log.warning("%s", Replaced(path, kept, "an older record of the same key under an earlier name"))
                    continue
                kept = _keep(results_dir, target, other)
                log.warning("%s", Replaced(target, kept, "an older record of the same key"))
        old_scores = path.parent / record["per_sample"]["file"]
        new_scores = scores_path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if old_scores.is_file():
            shutil.move(str(old_scores), new_scores)
        moved = {**record, "per_sample": {**record["per_sample"], "file": new_scores.name}}
        _atomic_json(target, moved)
        path.unlink()
        moves.append((path, target))
    return moves


__all__ = ["Rejected", "Replaced", "ResultsStore", "Scan", "content_digest", "find", "iter_records", "migrate",
           "read", "read_per_sample", "read_scores", "record_path", "result_files", "store_record", "write",
           "write_record"]
