"""Result files and the results store.

One JSON record per (scorer, target, split), validated against the published JSON Schema
(``result.schema.json``); per-sample scores beside it as parquet, referenced by SHA-256.
File names are decided by ``naming`` from the record's whole key (a readable slug plus a
hash of the key), so two keys never share a file::

    <split id>/<target slug>[@<revision>]/<scorer slug>-<key hash>.json
    <split id>/<target slug>[@<revision>]/<scorer slug>-<key hash>.scores.parquet

Folders whose name starts with ``_`` (``_diagnostics/``) hold other files and are skipped.

``ResultsStore.scan`` is what the site and the API read: it refuses (and reports, naming the
file and the field) every file that is not JSON, fails the schema, whose per-sample file is
missing or does not match its hash, whose figures differ from those recomputed from its
per-sample scores and the split's labels (when the split is materialized here; see
``recompute``), or that repeats the key (split, target, revision, scorer) of a file already
accepted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import MembenchError
from ..hashing import sha256_file
from .naming import is_keyed_name, path_for, record_key, scores_path
from .recompute import Outcome, Recomputer
from .schema import schema_errors

SCHEMA_VERSION = "membench-result-v1"


def _schema_problem(path, record) -> MembenchError | None:
    errors = schema_errors(record)
    if not errors:
        return None
    fld, message = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return MembenchError(
        f"result file {path}: field '{fld}': {message}{more}",
        "fix the producer, or regenerate the file with `membench run`",
    )


def _same_key_files(folder: Path, key: tuple) -> list[Path]:
    """Record files in ``folder`` that hold ``key`` (under any name: files written before the
    names carried the key hash are replaced, not duplicated, when the key is written again)."""
    out = []
    if folder.is_dir():
        for other in sorted(folder.glob("*.json")):
            if is_keyed_name(other.name):
                continue  # a name derived from another key: it cannot hold this one
            try:
                if record_key(_load_json(other)) == key:
                    out.append(other)
            except (MembenchError, KeyError, TypeError, AttributeError):
                continue
    return out


def _remove_record(path: Path) -> None:
    try:
        per_sample = _load_json(path).get("per_sample", {}).get("file")
    except MembenchError:
        per_sample = None
    path.unlink(missing_ok=True)
    if per_sample and "/" not in per_sample and "\\" not in per_sample:
        (path.parent / per_sample).unlink(missing_ok=True)


def replacement_problem(old: dict, new: dict) -> str | None:
    """Why ``new`` may not replace ``old`` under the same key: it is of another kind
    (attack, blind baseline, submission) or has another owner (None when it may)."""
    o, n = old.get("scorer") or {}, new.get("scorer") or {}
    o_owner, n_owner = o.get("owner") or "maintainers", n.get("owner") or "maintainers"
    if o.get("kind") != n.get("kind") or o_owner != n_owner:
        return f"it holds a {o.get('kind')} record of {o_owner}, this is a {n.get('kind')} record of {n_owner}"
    return None


def write(results_dir: Path, record: dict, uids, scores, columns: dict | None = None) -> Path:
    """Write a record and its per-sample scores (plus ``columns``, e.g. a per-sample
    ``truncated`` flag); refuse a record that fails the schema.

    Writing a key again replaces its file (and any older file of the same key in the folder)."""
    return write_record(results_dir, record, uids, scores, columns)[0]


def write_record(results_dir: Path, record: dict, uids, scores, columns: dict | None = None) -> tuple[Path, dict]:
    """``write``, returning the file and the record as written (what ``read`` of it gives:
    the schema version and the per-sample file filled in), without reading it back."""
    path = path_for(results_dir, record)
    key = record_key(record)
    old = None
    if path.exists():
        try:
            old = _load_json(path)
            old_key = record_key(old)
        except (MembenchError, KeyError, TypeError):
            old, old_key = None, None  # an unreadable old file is simply replaced
        if old_key is not None and old_key != key:  # only a truncated-hash collision gets here
            raise MembenchError(
                f"result file {path} already holds {old_key}; {key} maps to the same file",
                "rename the scorer or target so their keys differ",
            )
    older = [p for p in _same_key_files(path.parent, key) if p != path]
    for existing in ([path] if old is not None else []) + older:
        try:
            problem = replacement_problem(_load_json(existing), record)
        except MembenchError:
            problem = None  # unreadable: replaced like any unreadable file
        if problem:
            raise MembenchError(f"result file {existing} is not replaced: {problem}",
                                "a record is replaced only by one of the same kind and owner")
    path.parent.mkdir(parents=True, exist_ok=True)
    scores_file = scores_path(path)
    tmp_scores = scores_file.with_name(scores_file.name + ".tmp")
    pd.DataFrame({"uid": list(uids), "score": list(scores), **(columns or {})}).to_parquet(tmp_scores, index=False)
    record = dict(record)
    record["schema"] = SCHEMA_VERSION
    record["per_sample"] = {"file": scores_file.name, "sha256": sha256_file(tmp_scores)}
    written = json.loads(json.dumps(record, default=str))
    problem = _schema_problem(path, written)
    if problem is not None:
        tmp_scores.unlink()
        raise problem
    tmp_scores.replace(scores_file)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    for old in older:
        _remove_record(old)
    return path, written


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
    """One record, checked against the schema (raises MembenchError naming file and field)."""
    record = _load_json(path)
    problem = _schema_problem(path, record)
    if problem is not None:
        raise problem
    return record


def _result_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("_") and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".json"):
                yield Path(dirpath) / name


def iter_records(results_dir: Path):
    """(path, record) for every result file under ``results_dir``; raises on a bad file."""
    for path in _result_files(Path(results_dir)):
        yield path, read(path)


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
    accepted, which were recomputed from their per-sample scores and the split's labels
    (``recomputed``) and which could not be, with the reason (``not_recomputed``)."""

    records: list[tuple[Path, dict]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    recomputed: list[Path] = field(default_factory=list)
    not_recomputed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


class ResultsStore:
    """A results folder that accepts only valid, hash-consistent, self-consistent (figures
    recomputed where the split is materialized) and unique result files.

    ``recompute=False`` skips the recomputation (schema, hashes and keys only)."""

    def __init__(self, root: Path, *, recompute: bool = True):
        self.root = Path(root)
        self.recomputer = None
        if recompute:
            from ..home import cache_dir

            self.recomputer = Recomputer(cache_dir("recomputed"))
        self.last_outcome: Outcome | None = None

    def check(self, path: Path, record: dict) -> Rejected | None:
        """Why ``record`` (read from ``path``) must be refused, or None when it is fine.
        The recomputation's outcome is left in ``last_outcome``."""
        self.last_outcome = None
        errors = schema_errors(record)
        if errors:
            fld, message = errors[0]
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more problems)"
            return Rejected(path, fld, message)
        if record["schema"] != SCHEMA_VERSION:  # pragma: no cover - the schema pins it
            return Rejected(path, "schema", f"unknown schema {record['schema']!r}")
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
        if self.recomputer is not None:
            self.last_outcome = outcome = self.recomputer.check(path, record, per_sample, digest)
            if outcome.status == "mismatch":
                return Rejected(path, outcome.field or "<record>", outcome.message)
        return None

    def scan(self) -> Scan:
        out = Scan()
        if not self.root.is_dir():
            raise MembenchError(
                f"results folder {self.root} does not exist",
                "pass --results DIR, or run `membench run` / `make demo` first",
            )
        seen: dict[tuple, Path] = {}
        for path in _result_files(self.root):
            record, problem = _parse(path)
            if problem is not None:
                out.rejected.append(problem)
                continue
            problem = self.check(path, record)
            if problem is None:
                key = record_key(record)
                if key in seen:
                    problem = Rejected(
                        path, "<key>", f"duplicates {seen[key]} (same split, target, revision and scorer {key})"
                    )
                else:
                    seen[key] = path
            if problem is None:
                out.records.append((path, record))
                if self.last_outcome is not None and self.last_outcome.status == "ok":
                    out.recomputed.append(path)
                elif self.last_outcome is not None:
                    out.not_recomputed.append((path, self.last_outcome.message))
            else:
                out.rejected.append(problem)
        return out


def validate_dir(results_dir: Path, *, recompute: bool = True) -> Scan:
    """Check every result file under ``results_dir``: schema, per-sample hash, unique keys,
    and (``recompute``) every figure against its per-sample scores and the split's labels."""
    return ResultsStore(results_dir, recompute=recompute).scan()
