"""Reading a split's saved diagnostics (no scikit-learn: the runner and the gate read them), and
the blind AUC a text or a group scorer is compared with (``best_blind_auc``; defined in
``results.blind`` so that the site, which imports nothing of the diagnostics, uses it too).
`membench diagnose` writes ``$MEMBENCH_HOME/diagnostics/<split>.json`` and, for a results
folder, ``<results>/_diagnostics/<split>.json`` (``home.diagnostics_file`` decides both)."""

from __future__ import annotations

import json
from pathlib import Path

from ..home import diagnostics_file
from ..results.blind import UNITS, best_blind_auc, blind_reference

__all__ = ["UNITS", "best_blind_auc", "blind_reference", "read_saved"]


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
