"""A result's key and its file names: decided here, and only here.

The key of a record is (split id, target id, target revision, scorer name), where the scorer
name carries its canonical non-default parameters (``min_k(k=0.1)``; see
``scorer_label``); a record scored on the evaluated rest of a calibration subset (its
``evaluation_subset``: a trainable scorer's record, or another scorer's figures recomputed on
that rest) adds the subset's name as a fifth part; a group-level record (top-level ``kind:
group``: one score per user) adds ``unit=group``, so it is keyed apart from sample-level
records. File names are derived from the whole key,
so two different keys never share a file, whatever characters they hold::

    <split id>/<target slug>[@<revision slug>]/<scorer slug>-<key hash>.json
    <split id>/<target slug>[@<revision slug>]/<scorer slug>.rest-<subset slug>-<key hash>.json
    <split id>/<target slug>[@<revision slug>]/<scorer slug>.groups-<key hash>.json
    (and beside each, the same name ending .scores.parquet)

The slugs keep names readable; ``<key hash>`` (the first 12 hex digits of the SHA-256 of the
key) is what makes the name collision-free by construction, since slugs alone map several
names to one (``min_k(k=0.1)`` and ``min_k(k=0_1)``, ``a b`` and ``a_b``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import MembenchError
from ..hashing import sha256_json

KEY_HASH_CHARS = 12
RECORD_SUFFIX = ".json"
SCORES_SUFFIX = ".scores.parquet"


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


GROUP_UNIT = "unit=group"


def make_key(split: str, target: str, revision: str | None, scorer: str, subset: str | None = None,
             unit: str | None = None) -> tuple:
    key = (str(split), str(target), str(revision or "main"), str(scorer))
    key = key if subset is None else key + (str(subset),)
    return key + (GROUP_UNIT,) if unit == "group" else key


def unit(record: dict) -> str | None:
    """``group`` for a group-level record (one score per group), else None (per sample)."""
    return "group" if record.get("kind") == "group" else None


def evaluation_subset(record: dict) -> str | None:
    """The calibration subset whose evaluated rest a record is scored on (None: the whole split)."""
    block = record.get("evaluation_subset")
    return str(block["name"]) if isinstance(block, dict) and block.get("name") is not None else None


def record_key(record: dict) -> tuple:
    """What makes a result unique: (split, target, target revision, scorer name), plus the
    calibration subset for a record scored on a subset's evaluated rest."""
    return make_key(record["split"]["id"], record["target"]["id"], record["target"].get("revision"),
                    record["scorer"]["name"], evaluation_subset(record), unit(record))


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


def record_path(results_dir: Path, split: str, target: str, scorer: str, revision: str | None = None,
                subset: str | None = None, unit: str | None = None) -> Path:
    """The record file of the key (split, target, revision, scorer[, subset][, unit]) under ``results_dir``."""
    key = make_key(split, target, revision, scorer, subset, unit)
    folder = Path(results_dir).joinpath(*_split_parts(split), _target_dir(target, revision))
    rest = ("" if subset is None else f".rest-{slug(subset)}") + (".groups" if unit == "group" else "")
    return folder / f"{slug(scorer)}{rest}-{key_hash(key)}{RECORD_SUFFIX}"


def path_for(results_dir: Path, record: dict) -> Path:
    return record_path(results_dir, record["split"]["id"], record["target"]["id"], record["scorer"]["name"],
                       record["target"].get("revision"), evaluation_subset(record), unit(record))


_KEYED = re.compile(r"-[0-9a-f]{%d}\.json$" % KEY_HASH_CHARS)


def is_keyed_name(file_name: str) -> bool:
    """Whether a record file name carries a key hash (every name ``record_path`` gives)."""
    return bool(_KEYED.search(file_name))


def scores_path(record_file: Path) -> Path:
    """The per-sample file written beside a record file."""
    record_file = Path(record_file)
    stem = record_file.name[: -len(RECORD_SUFFIX)] if record_file.name.endswith(RECORD_SUFFIX) else record_file.stem
    return record_file.with_name(stem + SCORES_SUFFIX)
