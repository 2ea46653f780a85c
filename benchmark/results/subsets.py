"""Records on the evaluated rest of a calibration subset, derived from whole-split records.

A trainable scorer is scored on the rest of its calibration subset only. So that it can be
compared on exactly the same texts, every other record of the split (any target, any kind:
attacks, submissions, blind baselines) gets a derived record on that rest: its per-sample
scores restricted to the rest's uids and its figures recomputed there, with no model run.

A derived record is its parent with ``metrics`` and ``counts`` recomputed on the rest (the
excess over the blind baseline uses the best blind baseline on the same rest), the
``evaluation_subset`` block (the subset, its size and hashes, and ``derived_from``: the parent
file and its per-sample hash), and its own key (``naming``: the subset is a fifth part), so it
never replaces the parent. Writing again replaces it; the results store recomputes it like
any record (``recompute``).
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

import numpy as np

from .. import metrics
from ..errors import MembenchError
from .naming import evaluation_subset
from .store import _load_json, read, read_per_sample, read_scores, result_files, write

log = logging.getLogger(__name__)


def _records_of(results_dir: Path, split_id: str, checked: bool = True):
    """(path, record) of every readable record of ``split_id`` under ``results_dir`` (with
    ``checked=False`` parsed only, not held against the schema)."""
    folder = Path(results_dir).joinpath(*split_id.split("/"))
    if not folder.is_dir():
        return
    for path in result_files(folder):
        try:
            record = read(path) if checked else _load_json(path)
            if record["split"]["id"] != split_id:
                continue
        except (MembenchError, KeyError, TypeError):
            continue
        yield path, record


def subsets_in(results_dir: Path, split_id: str) -> list[str]:
    """Names of the calibration subsets some record of the split is scored on (the records
    are parsed, not schema-checked: every run asks this of the whole split folder; whatever
    is then derived reads its records checked)."""
    return sorted({name for _, r in _records_of(results_dir, split_id, checked=False) if (name := evaluation_subset(r))})


def metrics_on(labels: np.ndarray, scores: np.ndarray, blind_auc: float | None = None, bootstrap: dict | None = None):
    """(summary with roc, counts) over the finite scores of some rows."""
    keep = np.isfinite(scores)
    boot = bootstrap or {}
    summary = metrics.summarize(labels[keep], scores[keep], blind_auc=blind_auc,
                                n_resamples=int(boot.get("resamples", metrics.bootstrap.N_RESAMPLES)),
                                seed=int(boot.get("seed", metrics.bootstrap.SEED)))
    summary["roc"] = metrics.roc_points(labels[keep], scores[keep])
    counts = {"n_samples": int(len(scores)), "n_scored": int(keep.sum()),
              "excluded_nonfinite": int((~keep).sum())}
    return summary, counts


def rest_blind_auc(results_dir: Path, split, subset) -> float | None:
    """The best blind baseline's AUC on the subset's evaluated rest, from the whole-split
    blind-baseline records of this version of the split (None when there are none)."""
    labels = split.labels()
    rest = set(subset.rest)
    best = None
    for path, record in _records_of(results_dir, split.id):
        if (record["scorer"].get("kind") != "blind_baseline" or evaluation_subset(record)
                or record["split"].get("content_hash") != split.content_hash):
            continue
        scores = read_scores(path, record)
        scores = scores[[u in rest for u in scores.index]]
        y, s = labels.reindex(scores.index).to_numpy(), scores.to_numpy(float)
        keep = np.isfinite(s)
        if len(np.unique(y[keep])) == 2:
            value = metrics.auc(y[keep].astype(int), s[keep])
            best = value if best is None else max(best, value)
    return best


def _derived(parent_path: Path, record: dict, split, subset, labels, blind_auc) -> tuple | None:
    table = read_per_sample(parent_path, record)
    rest = set(subset.rest)
    table = table[[u in rest for u in table.index]]
    rows = table["score"]
    y = labels.reindex(rows.index).to_numpy()
    s = rows.to_numpy(float)
    keep = np.isfinite(s)
    if len(np.unique(y[keep])) != 2:
        return None
    kind = record["scorer"].get("kind")
    summary, counts = metrics_on(y.astype(int), s, None if kind == "blind_baseline" else blind_auc,
                                 record["metrics"].get("bootstrap"))
    if kind == "blind_baseline":
        counts["n_samples"] = len(subset.rest)  # the baselines analyzed the rows left after dropping duplicates
    out = {k: v for k, v in record.items() if k not in ("schema", "per_sample", "metrics", "counts")}
    out["metrics"] = summary
    out["counts"] = {**counts, "rule": "the parent record's per-sample scores restricted to the evaluated rest; "
                     "non-finite scores excluded"}
    columns = {c: table[c].tolist() for c in table.columns if c != "score"}  # per-sample flags travel along
    if "truncated" in columns and "n_truncated" in record.get("counts", {}):
        out["counts"].update({k: record["counts"][k] for k in ("context_rule", "truncation_rule") if k in record["counts"]})
        out["counts"]["n_truncated"] = int(sum(bool(v) for v in columns["truncated"]))
    if "shift_sensitivity" in record:
        out["shift_sensitivity"] = {**record["shift_sensitivity"], "auc": summary["auc"],
                                    "auc_ci95": summary["auc_ci95"],
                                    "distance_from_chance": abs(summary["auc"] - 0.5)}
    out["evaluation_subset"] = {**subset.block(), "derived_from": {
        "file": parent_path.name, "per_sample_sha256": record["per_sample"]["sha256"]}}
    out["provenance"] = {**record["provenance"], "derived_at": _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds")}
    return out, rows.index.tolist(), s.tolist(), columns


def derive(results_dir: Path, split, subset, *, only=None) -> list[Path]:
    """Write, for every whole-split record of ``split`` (this version) in ``results_dir``, its
    record on ``subset``'s evaluated rest; ``only``: restrict to these parent files. Returns the
    files written."""
    results_dir = Path(results_dir)
    labels = split.labels()
    blind = rest_blind_auc(results_dir, split, subset)
    only = None if only is None else {Path(p).resolve() for p in only}
    written = []
    for path, record in list(_records_of(results_dir, split.id)):
        if evaluation_subset(record) or record["split"].get("content_hash") != split.content_hash:
            continue
        if record.get("kind") == "group":  # calibration subsets are of samples; a group record has none
            continue
        if only is not None and path.resolve() not in only:
            continue
        made = _derived(path, record, split, subset, labels, blind)
        if made is None:
            log.warning("not derived on %s: %s has no scored member and non-member in the rest", subset.name, path)
            continue
        written.append(write(results_dir, *made))
    return written
