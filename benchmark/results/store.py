"""Result files and the results store.

One JSON record per (scorer, target, split), validated against the published JSON Schema
(``result.schema.json``); per-sample scores beside it as parquet, referenced by SHA-256.
Layout under a results directory::

    <split id>/<target slug>/<scorer>.json             the record (metrics, counts, provenance)
    <split id>/<target slug>/<scorer>.scores.parquet   per-sample (uid, score), hash in record

The target slug carries the revision when it is not ``main`` (``pythia-160m@step1000``), so
checkpoints of one model never overwrite each other. Folders whose name starts with ``_``
(``_diagnostics/``) hold other files and are skipped.

``ResultsStore.scan`` is what the site and the API read: it refuses (and reports, naming the
file and the field) every file that is not JSON, fails the schema, whose per-sample file is
missing or does not match its hash, or that repeats the key (split, target, revision, scorer)
of a file already accepted.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import MembenchError
from ..hashing import sha256_file
from .schema import schema_errors

SCHEMA_VERSION = "membench-result-v1"


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "_"


def _target_dir(target: str, revision: str | None) -> str:
    if revision in (None, "", "main"):
        return slug(target)
    return f"{slug(target)}@{slug(revision)}"


def record_path(results_dir: Path, split: str, target: str, scorer: str, revision: str | None = None) -> Path:
    parts = split.split("/")
    if any(part in ("", ".", "..") or part.startswith("_") for part in parts):
        raise MembenchError(
            f"split id {split!r} cannot name a results folder", "use a registry split id such as demo/pydoc"
        )
    return Path(results_dir).joinpath(*parts, _target_dir(target, revision), slug(scorer) + ".json")


def record_key(record: dict) -> tuple:
    """What makes a result unique: (split, target, target revision, scorer)."""
    return (
        record["split"]["id"],
        record["target"]["id"],
        record["target"].get("revision") or "main",
        record["scorer"]["name"],
    )


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


def write(results_dir: Path, record: dict, uids, scores, columns: dict | None = None) -> Path:
    """Write a record and its per-sample scores (plus ``columns``, e.g. a per-sample
    ``truncated`` flag); refuse a record that fails the schema."""
    target = record["target"]
    path = record_path(
        results_dir, record["split"]["id"], target["id"], record["scorer"]["name"], target.get("revision")
    )
    if path.exists():
        try:
            old_key = record_key(_load_json(path))
        except (MembenchError, KeyError, TypeError):
            old_key = None  # an unreadable old file is simply replaced
        if old_key is not None and old_key != record_key(record):
            raise MembenchError(
                f"result file {path} already holds {old_key}; {record_key(record)} maps to the same file",
                "rename the scorer or target so their file names differ",
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    scores_file = path.with_suffix("").with_suffix(".scores.parquet")
    tmp_scores = scores_file.with_name(scores_file.name + ".tmp")
    pd.DataFrame({"uid": list(uids), "score": list(scores), **(columns or {})}).to_parquet(tmp_scores, index=False)
    record = dict(record)
    record["schema"] = SCHEMA_VERSION
    record["per_sample"] = {"file": scores_file.name, "sha256": sha256_file(tmp_scores)}
    problem = _schema_problem(path, json.loads(json.dumps(record, default=str)))
    if problem is not None:
        tmp_scores.unlink()
        raise problem
    tmp_scores.replace(scores_file)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


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
    """What a results folder holds: accepted (path, record) pairs and rejected files."""

    records: list[tuple[Path, dict]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


class ResultsStore:
    """A results folder that accepts only valid, hash-consistent, unique result files."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def check(self, path: Path, record: dict) -> Rejected | None:
        """Why ``record`` (read from ``path``) must be refused, or None when it is fine."""
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
            else:
                out.rejected.append(problem)
        return out


def validate_dir(results_dir: Path) -> Scan:
    """Check every result file under ``results_dir`` (schema, per-sample hash, unique keys)."""
    return ResultsStore(results_dir).scan()
