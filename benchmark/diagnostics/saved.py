"""Reading a split's saved diagnostics (no scikit-learn: the runner, the site and the API read
them). `membench diagnose` writes ``$MEMBENCH_HOME/diagnostics/<split>.json`` and, for a results
folder, ``<results>/_diagnostics/<split>.json`` (``home.diagnostics_file`` decides both)."""

from __future__ import annotations

import json
from pathlib import Path

from ..home import diagnostics_file


def read_saved(split_id: str, results_dir: Path | None = None, content_hash: str | None = None) -> dict | None:
    """A split's diagnostics: ``<results_dir>/_diagnostics/<split>.json`` first, else the latest
    under ``$MEMBENCH_HOME/diagnostics``; None when there is none. A file whose subject has
    another content hash than ``content_hash`` was made on another version of the split and is
    passed over; an unreadable one gives ``{"error": ...}`` (shown, never used as figures)."""
    paths = ([diagnostics_file(split_id, results_dir)] if results_dir is not None else []) + [
        diagnostics_file(split_id)]
    for path in paths:
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return {"error": f"diagnostics file {path.name} is not valid JSON"}
        if not isinstance(data, dict):
            continue
        subject = data.get("subject") if isinstance(data.get("subject"), dict) else {}
        if content_hash and subject.get("content_hash") and subject["content_hash"] != content_hash:
            continue
        return data
    return None


UNITS = {"sample": "blind_auc", "group": "blind_auc_group"}


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def best_blind_auc(saved: dict | None, unit: str = "sample", tokenizer: str | None = None) -> float | None:
    """The best blind AUC a scorer of ``unit`` is compared with, from a split's saved
    diagnostics (``read_saved``); None when there is none at that unit.

    ``unit="sample"``: ``blind_auc``, over texts (folds drawn over groups where the split has
    them): for text scorers. ``unit="group"``: ``blind_auc_group``, over groups (a group's
    texts' mean out-of-fold score): for group scorers (user inference); None on a split
    without groups, or diagnosed before groups were. ``tokenizer``: a target's tokenizer hash;
    when the split has a tokenizer baseline for it (``membench diagnose SPLIT --target T``),
    the larger of the two is the best blind AUC for that target's records.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    if not isinstance(saved, dict) or "error" in saved:
        return None
    values = [_number(saved.get(UNITS[unit]))]
    entry = (saved.get("tokenizer_baselines") or {}).get(tokenizer) if tokenizer else None
    if isinstance(entry, dict):
        values.append(_number(entry.get("auc")) if unit == "sample"
                      else _number((entry.get("group") or {}).get("auc")))
    found = [v for v in values if v is not None]
    return max(found) if found else None
