"""Result files: one JSON per (scorer, target, split), per-sample scores beside it.

Layout under a results directory::

    <split id>/<target slug>/<scorer>.json      the record (metrics, counts, provenance)
    <split id>/<target slug>/<scorer>.scores.parquet   per-sample (uid, score), hash in record
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..errors import MembenchError
from ..hashing import sha256_file

SCHEMA_VERSION = "membench-result-v1"


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "_"


def record_path(results_dir: Path, split: str, target: str, scorer: str) -> Path:
    return Path(results_dir).joinpath(*split.split("/"), slug(target), slug(scorer) + ".json")


def write(results_dir: Path, record: dict, uids, scores) -> Path:
    path = record_path(results_dir, record["split"]["id"], record["target"]["id"], record["scorer"]["name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    scores_file = path.with_suffix(".scores.parquet")
    pd.DataFrame({"uid": list(uids), "score": list(scores)}).to_parquet(scores_file, index=False)
    record = dict(record)
    record["schema"] = SCHEMA_VERSION
    record["per_sample"] = {"file": scores_file.name, "sha256": sha256_file(scores_file)}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def read(path: Path) -> dict:
    try:
        record = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise MembenchError(f"result file {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    for field in ("schema", "split", "target", "scorer", "metrics", "provenance"):
        if field not in record:
            raise MembenchError(f"result file {path} has no field '{field}'")
    return record


def iter_records(results_dir: Path):
    """(path, record) for every result file under ``results_dir``.

    Folders whose name starts with ``_`` (for example ``_diagnostics/``) hold other files
    and are skipped.
    """
    root = Path(results_dir)
    for path in sorted(root.rglob("*.json")):
        if any(part.startswith("_") for part in path.relative_to(root).parts[:-1]):
            continue
        yield path, read(path)
