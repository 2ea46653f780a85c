"""A result's key and its file names: decided here, and only here.

A record's key holds everything that can change its numbers (``record_key``): the split and
its content hash; the target, its revision, weights and tokenizer hashes, dtype, context rule
and context length; the scorer's result name (with its canonical non-default parameters,
``min_k(k=0.1)``; see ``scorer_label``), its whole parameter set (perturbation or neighbour
sources are parameters by contract), its version and a submission's version; the reference
model a scorer compared with; the calibration subset whose evaluated rest it is scored on
(name and content); and the unit (samples, or groups: one score per user). The key is a tuple
of ``name=value`` strings, readable in messages.

File names are derived from the whole key::

    <split id>/<target slug>[@<revision slug>]/<scorer slug>-<key hash>.json
    <split id>/<target slug>[@<revision slug>]/<scorer slug>.rest-<subset slug>-<key hash>.json
    <split id>/<target slug>[@<revision slug>]/<scorer slug>.groups-<key hash>.json
    (and beside each, the same name ending .scores.parquet)

The slugs keep names readable; ``<key hash>`` (the first 12 hex digits of the SHA-256 of the
whole key) makes the name collision-free by construction: two records that differ in any part
of the key (a dtype, a context rule, a parameter, a version) never share a file, so writing
one can never replace the other. Writing a record of the same key replaces its file and keeps
the previous one under ``_history/`` (see ``store``).

The coarse key (split, target, revision, scorer result name, subset, unit: ``make_key``,
``coarse_key``) is what people name a result by; ``find`` looks a record up by it (and by any
further key part, e.g. ``dtype="bfloat16"``), refusing when several records match.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import MembenchError
from ..hashing import sha256_json

KEY_HASH_CHARS = 12
RECORD_SUFFIX = ".json"
SCORES_SUFFIX = ".scores.parquet"
HISTORY = "_history"
ROUNDS = "_rounds"
GROUP_UNIT = "unit=group"


def slug(name: str) -> str:
    """A readable file-name part (not unique on its own: the key hash makes names unique)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_.") or "_"


def format_value(value) -> str:
    """A parameter value as it appears in a scorer's result name."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def scorer_label(name: str, params: dict | None = None) -> str:
    """The scorer's name in results: ``name``, plus its canonical (non-default) parameters in
    sorted order, e.g. ``min_k(k=0.1)``. Canonicalize ``params`` first
    (``attacks.canonical_params``), so that one setting always has one name."""
    if not params:
        return name
    return name + "(" + ",".join(f"{k}={format_value(v)}" for k, v in sorted(params.items())) + ")"


def base_name(label: str) -> str:
    """``min_k(k=0.1)`` -> ``min_k``."""
    return label.split("(", 1)[0]


def name_setting(label: str) -> str:
    """The parameters a result name carries: ``min_k(k=0.1)`` -> ``k=0.1`` ('' for none)."""
    return label[len(base_name(label)) + 1:-1] if "(" in label and label.endswith(")") else ""


def unit(record: dict) -> str | None:
    """``group`` for a group-level record (one score per group), else None (per sample)."""
    return "group" if record.get("kind") == "group" else None


def evaluation_subset(record: dict) -> str | None:
    """The calibration subset whose evaluated rest a record is scored on (None: the whole split)."""
    block = record.get("evaluation_subset")
    return str(block["name"]) if isinstance(block, dict) and block.get("name") is not None else None


def make_key(split: str, target: str, revision: str | None, scorer: str, subset: str | None = None,
             unit: str | None = None) -> tuple:
    """The coarse key: what a result is named by (split, target, revision, scorer result name,
    and the subset and unit when there are)."""
    key = (str(split), str(target), str(revision or "main"), str(scorer))
    key = key if subset is None else key + (str(subset),)
    return key + (GROUP_UNIT,) if unit == "group" else key


def coarse_key(record: dict) -> tuple:
    return make_key(record["split"]["id"], record["target"]["id"], record["target"].get("revision"),
                    record["scorer"]["name"], evaluation_subset(record), unit(record))


def _reference(record: dict) -> str | None:
    ref = (record.get("provenance") or {}).get("reference")
    if not isinstance(ref, dict):
        return None
    return f"{ref.get('id')}@{ref.get('revision') or 'main'}:{ref.get('weights_sha256') or ''}"


def key_parts(record: dict) -> dict[str, object]:
    """Every part of a record's key, by name (see the module docstring)."""
    split, target, scorer = record["split"], record["target"], record["scorer"]
    subset = record.get("evaluation_subset") if isinstance(record.get("evaluation_subset"), dict) else {}
    submission = record.get("submission") if isinstance(record.get("submission"), dict) else {}
    params = scorer.get("params") if isinstance(scorer.get("params"), dict) else {}
    return {
        "split": split["id"],
        "split_content": split.get("content_hash"),
        "target": target["id"],
        "revision": target.get("revision") or "main",
        "weights": target.get("weights_sha256"),
        "tokenizer": target.get("tokenizer_sha256"),
        "dtype": target.get("dtype"),
        "context_rule": target.get("context_rule"),
        "max_length": target.get("max_length"),
        "scorer": scorer["name"],
        "params": json.dumps(params, sort_keys=True, default=str, separators=(",", ":")),
        "version": scorer.get("version"),
        "submission_version": submission.get("version"),
        "reference": _reference(record),
        "subset": subset.get("name"),
        "subset_calibration": subset.get("calibration_sha256"),
        "unit": unit(record) or "sample",
    }


def record_key(record: dict) -> tuple[str, ...]:
    """What makes a result unique: every part of ``key_parts``, as ``name=value`` strings."""
    return tuple(f"{k}={'' if v is None else v}" for k, v in key_parts(record).items())


def key_hash(key: tuple) -> str:
    return sha256_json(list(key))[:KEY_HASH_CHARS]


def _target_dir(target: str, revision: str | None) -> str:
    if revision in (None, "", "main"):
        return slug(target)
    return f"{slug(target)}@{slug(revision)}"


def _split_parts(split: str) -> list[str]:
    parts = split.split("/")
    if any(part in ("", ".", "..") or part.startswith("_") or part.startswith(".") for part in parts):
        raise MembenchError(
            f"split id {split!r} cannot name a results folder", "use a registry split id such as demo/pydoc"
        )
    return parts


def folder_of(results_dir: Path, split: str, target: str, revision: str | None = None) -> Path:
    """The folder holding every record of (split, target, revision)."""
    return Path(results_dir).joinpath(*_split_parts(split), _target_dir(target, revision))


def _stem(scorer: str, subset: str | None, unit: str | None) -> str:
    """The readable start of a record's file name (before the key hash)."""
    return slug(scorer) + ("" if subset is None else f".rest-{slug(subset)}") + (".groups" if unit == "group" else "")


def coarse_path(results_dir: Path, split: str, target: str, scorer: str, revision: str | None = None,
                subset: str | None = None, unit: str | None = None) -> Path:
    """The name a record of the coarse key alone would take: no record is ever written there (every
    record's key holds more), so it names a result that does not exist."""
    stem = _stem(scorer, subset, unit)
    return folder_of(results_dir, split, target, revision) / (
        f"{stem}-{key_hash(make_key(split, target, revision, scorer, subset, unit))}{RECORD_SUFFIX}")


def path_for(results_dir: Path, record: dict) -> Path:
    """The file of ``record`` under ``results_dir``: named by its whole key."""
    folder = folder_of(results_dir, record["split"]["id"], record["target"]["id"], record["target"].get("revision"))
    stem = _stem(record["scorer"]["name"], evaluation_subset(record), unit(record))
    return folder / f"{stem}-{key_hash(record_key(record))}{RECORD_SUFFIX}"


_KEYED = re.compile(r"-[0-9a-f]{%d}\.json$" % KEY_HASH_CHARS)


def is_keyed_name(file_name: str) -> bool:
    """Whether a record file name ends in a key hash (every name ``path_for`` gives)."""
    return bool(_KEYED.search(file_name))


def masked_name(path: str) -> str:
    """A record's file path with its key hash masked (``loss-<key>.json``): what a public page may
    print of a file name, since the key holds the split's content hash, which depends on the
    labels of a private split."""
    return _KEYED.sub("-<key>.json", str(path))


def candidates(folder: Path, scorer: str, subset: str | None = None, unit: str | None = None) -> list[Path]:
    """Record files in ``folder`` that may hold records of (scorer, subset, unit): every keyed name
    with that readable start, and the unkeyed name files had before names carried a key."""
    stem = _stem(scorer, subset, unit)
    if not Path(folder).is_dir():
        return []
    keyed = [p for p in Path(folder).glob(f"{glob_escape(stem)}-*{RECORD_SUFFIX}")
             if is_keyed_name(p.name) and p.name[: -KEY_HASH_CHARS - len(RECORD_SUFFIX) - 1] == stem]
    legacy = Path(folder) / f"{stem}{RECORD_SUFFIX}"
    return sorted(keyed) + ([legacy] if legacy.is_file() else [])


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def scores_path(record_file: Path) -> Path:
    """The per-sample file written beside a record file."""
    record_file = Path(record_file)
    stem = record_file.name[: -len(RECORD_SUFFIX)] if record_file.name.endswith(RECORD_SUFFIX) else record_file.stem
    return record_file.with_name(stem + SCORES_SUFFIX)


def rounds_file(results_dir: Path, split_id: str) -> Path:
    """When the Ladder's rounds of a private split were closed (``ladder.close_round``):
    ``<results>/_rounds/<split id>.json``."""
    *folders, name = _split_parts(split_id)
    return Path(results_dir).joinpath(ROUNDS, *folders, name + RECORD_SUFFIX)


def history_dir(results_dir: Path, record_file: Path) -> Path:
    """Where the previous versions of a record file are kept:
    ``<results>/_history/<the file's path without .json>/``."""
    rel = Path(record_file).resolve().relative_to(Path(results_dir).resolve())
    return Path(results_dir) / HISTORY / rel.parent / rel.name[: -len(RECORD_SUFFIX)]
