"""Self-checking results: every figure of a record recomputed from its per-sample scores and
the split's labels, whenever the split is materialized here.

The publication gate (``gate``: ``membench results validate``) calls ``check``; a record whose
figures differ from the recomputed ones is refused, naming the file and the field. How a record is recomputed depends on its kind (``RECOMPUTERS``):

- ``attack`` and ``submission``: the per-sample file holds every sample of the split (NaN where
  a text had nothing to score); metrics over the finite scores; ``counts.n_samples`` is the
  number of rows;
- ``blind_baseline``: the per-sample file holds the rows the baselines analyzed (duplicates
  dropped); ``counts.n_samples`` is the split's size and ``counts.n_scored`` the rows.

A record of any kind scored on the evaluated rest of a calibration subset (``evaluation_subset``:
a trainable scorer's record, or another scorer's figures recomputed on that rest) is checked
against the subset as the registry declares it now: its rows hold no calibration uid (and,
for ``attack`` and ``submission``, exactly the rest), the subset's hashes match, and the
split's size in the rule above is the rest's size. A fitted ``operating_point``'s TPR and FPR
on the rest are recomputed too.

A group-level record (top-level ``kind: group``, any scorer kind) is recomputed over groups:
its per-sample file holds one row per group (``uid`` = the group id), which must be exactly the
groups of the rows a group scorer sees on the split (``suite.user_level.rows``: the attacker-held
samples, else the split's samples; their uid hash must match ``groups.rows_sha256``), every score
finite, and the figures are those of ``metrics.summarize_groups`` against the split's
``group_labels.parquet``.

A kind with no rule is reported as not recomputed, never silently passed as checked. Verdicts
are cached under ``MEMBENCH_HOME/recomputed`` keyed by the record's content (without what the
gate itself writes), the per-sample file's hash and the split's content hash, so the gate only
recomputes what changed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import metrics, suite
from ..errors import MembenchError
from ..hashing import sha256_json
from ..suite import user_level as groups
from .store import content_digest

TOLERANCE = 1e-6  # absolute; recomputation on the same inputs is exact up to float noise
RULE_VERSION = "recompute-v2"  # v2: group-level records


@dataclass(frozen=True)
class Outcome:
    """``status``: ``ok`` (every figure recomputed and equal), ``mismatch`` (``field`` differs:
    refuse the record) or ``skipped`` (not recomputed: ``message`` says why)."""

    status: str
    field: str | None = None
    message: str = ""

    def as_dict(self) -> dict:
        return {"status": self.status, "field": self.field, "message": self.message}


class SplitLabels:
    """Labels of materialized splits, loaded once per split (and checked against the manifest)."""

    def __init__(self):
        self._cache: dict[str, tuple[pd.Series | None, str | None, str]] = {}

    def get(self, split_id: str) -> tuple[pd.Series | None, str | None, str]:
        """(labels by uid, content hash, why not) for a split; labels None when unavailable."""
        if split_id not in self._cache:
            self._cache[split_id] = self._load(split_id)
        return self._cache[split_id]

    @staticmethod
    def _load(split_id: str):
        try:
            if not suite.is_materialized(split_id):
                return None, None, f"split {split_id} is not materialized here"
            split = suite.load(suite.get_split(split_id))  # verifies the files' hashes
            return split.labels(), split.content_hash, ""
        except MembenchError as exc:
            return None, None, f"split {split_id} cannot be read here ({exc.message})"


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= TOLERANCE


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and len(value) > 4:
        return f"[{len(value)} values]"
    return json.dumps(value, default=str)


def compare(expected: dict, record: dict, where: str) -> Outcome:
    """The first field (dotted path) whose recorded value differs from ``expected``."""
    for fld, want in expected.items():
        node = record
        for part in fld.split("|"):
            node = node.get(part) if isinstance(node, dict) else None
        got = node
        name = fld.replace("|", ".")
        if isinstance(want, list):
            same = isinstance(got, list) and len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want))
        else:
            same = _close(got, want)
        if not same:
            return Outcome("mismatch", name, f"the record says {_fmt(got)}, but {where} give {_fmt(want)}")
    return Outcome("ok")


def _metric_figures(summary: dict, prefix: str = "metrics") -> dict:
    out = {f"{prefix}|auc": summary["auc"], f"{prefix}|auc_ci95": summary["auc_ci95"],
           f"{prefix}|n_members": summary["n_members"], f"{prefix}|n_nonmembers": summary["n_nonmembers"]}
    for budget, entry in summary["tpr_at_fpr"].items():
        out[f"{prefix}|tpr_at_fpr|{budget}|resolvable"] = entry["resolvable"]
        out[f"{prefix}|tpr_at_fpr|{budget}|value"] = entry["value"]
        out[f"{prefix}|tpr_at_fpr|{budget}|ci95"] = entry["ci95"]
    if "excess_over_blind" in summary:
        out[f"{prefix}|excess_over_blind"] = summary["excess_over_blind"]
    return out


def _summary(record: dict, y: np.ndarray, s: np.ndarray) -> dict:
    m = record.get("metrics", {})
    boot = m.get("bootstrap") or {}
    summary = metrics.summarize(y, s, n_resamples=int(boot.get("resamples", metrics.bootstrap.N_RESAMPLES)),
                                seed=int(boot.get("seed", metrics.bootstrap.SEED)),
                                blind_auc=m.get("best_blind_auc"))
    summary["roc"] = metrics.roc_points(y, s)
    return summary


def _scored_figures(record: dict, y: np.ndarray, s: np.ndarray) -> dict:
    """Figures of a record scored over per-sample rows, NaN rows excluded and counted."""
    keep = np.isfinite(s)
    if len(np.unique(y[keep])) != 2:
        return {"counts|n_scored": int(keep.sum()), "metrics|auc": None}
    summary = _summary(record, y[keep], s[keep])
    figures = _metric_figures(summary)
    figures["metrics|roc|fpr"] = summary["roc"]["fpr"]
    figures["metrics|roc|tpr"] = summary["roc"]["tpr"]
    figures["counts|n_scored"] = int(keep.sum())
    counts = record.get("counts", {})
    if "excluded_no_scored_tokens" in counts and "excluded_other_nonfinite" in counts:
        # the two exclusion counts are told apart by the features; their sum is checkable here
        figures["counts|excluded_total"] = int((~keep).sum())
    point = record.get("operating_point")
    if isinstance(point, dict) and isinstance(point.get("threshold"), (int, float)):
        figures.update(operating_point_figures(y[keep], s[keep], float(point["threshold"])))
    if "shift_sensitivity" in record:
        figures["shift_sensitivity|auc"] = summary["auc"]
        figures["shift_sensitivity|auc_ci95"] = summary["auc_ci95"]
        figures["shift_sensitivity|distance_from_chance"] = abs(summary["auc"] - 0.5)
    return figures


def operating_point_rates(y: np.ndarray, s: np.ndarray, threshold: float) -> dict:
    """TPR and FPR of the rule "member when score >= threshold" (finite scores only)."""
    member = s >= threshold
    return {"tpr": float(member[y == 1].mean()), "fpr": float(member[y == 0].mean()),
            "n_members": int((y == 1).sum()), "n_nonmembers": int((y == 0).sum())}


def operating_point_figures(y, s, threshold: float) -> dict:
    rates = operating_point_rates(y, s, threshold)
    return {"operating_point|evaluated|tpr": rates["tpr"], "operating_point|evaluated|fpr": rates["fpr"]}


def _every_sample(record, y, s, split_size) -> dict:
    figures = _scored_figures(record, y, s)
    figures["counts|n_samples"] = len(s)
    return figures


def _analyzed_rows(record, y, s, split_size) -> dict:
    figures = _scored_figures(record, y, s)
    figures["counts|n_samples"] = split_size
    return figures


# How each kind of record is recomputed: fn(record, labels, scores, split size) -> figures.
RECOMPUTERS = {
    "attack": _every_sample,
    "submission": _every_sample,
    "blind_baseline": _analyzed_rows,
}


def _with_derived(record: dict) -> dict:
    """The record plus fields derived for comparison (the total of the exclusion counts)."""
    counts = record.get("counts") or {}
    if "excluded_no_scored_tokens" in counts and "excluded_other_nonfinite" in counts:
        record = {**record, "counts": {**counts, "excluded_total":
                                       counts["excluded_no_scored_tokens"] + counts["excluded_other_nonfinite"]}}
    return record


def _subset_problem(record: dict, uids: pd.Series, subset) -> Outcome | None:
    """Why a record on a subset's evaluated rest does not match the subset, or None."""
    block = record["evaluation_subset"]
    if subset is None:
        return Outcome("mismatch", "evaluation_subset.name",
                       f"calibration subset {block.get('name')!r} is not declared for split {record['split']['id']}")
    if isinstance(subset, str):
        return Outcome("mismatch", "evaluation_subset.name", subset)
    for fld, want in (("calibration_sha256", subset.calibration_sha256), ("rest_sha256", subset.rest_sha256),
                      ("n", len(subset.rest)), ("n_calibration", len(subset.calibration))):
        if block.get(fld) != want:
            return Outcome("mismatch", f"evaluation_subset.{fld}",
                           f"the record says {_fmt(block.get(fld))}, but subset {subset.name} of split "
                           f"{subset.split_id} as declared now gives {_fmt(want)}")
    rows = set(uids.tolist())
    leaked = rows & set(subset.calibration)
    if leaked:
        return Outcome("mismatch", "per_sample.file",
                       f"the per-sample file scores {len(leaked)} calibration sample(s) of subset {subset.name}")
    kind = (record.get("scorer") or {}).get("kind")
    if kind in ("attack", "submission") and rows != set(subset.rest):
        return Outcome("mismatch", "per_sample.file",
                       f"the per-sample file holds {len(rows)} rows, not the {len(subset.rest)} of the evaluated rest "
                       f"of subset {subset.name}")
    return None


def recompute_groups(record: dict, scores: pd.DataFrame, split, where: str) -> Outcome:
    """A group-level record's figures from its per-group scores and the split's group labels."""
    if not {"uid", "score"} <= set(scores.columns):
        return Outcome("mismatch", "per_sample.file", "the per-group file has no uid and score columns")
    ids = scores["uid"].astype(str)
    if ids.duplicated().any():
        return Outcome("mismatch", "per_sample.file", f"the per-group file repeats {int(ids.duplicated().sum())} group(s)")
    try:
        labels = groups.labels(split)
        rows, which = groups.rows(split)
    except MembenchError as exc:
        return Outcome("mismatch", "kind", exc.message)
    seen = set(rows["group"].astype(str))
    if set(ids) != seen:
        extra, missing = len(set(ids) - seen), len(seen - set(ids))
        return Outcome("mismatch", "per_sample.file", f"the per-group file holds {extra} group(s) not among the split's "
                       f"{which} rows and lacks {missing} of them")
    block = record.get("groups") or {}
    if block.get("rows") != which:
        return Outcome("mismatch", "groups.rows", f"the record says {_fmt(block.get('rows'))}, but split "
                       f"{split.id} gives a group scorer its {which} rows")
    if "rows_sha256" in block and block["rows_sha256"] != sha256_json(sorted(rows["uid"].tolist())):
        return Outcome("mismatch", "groups.rows_sha256", f"the record's rows are not the split's {which} rows")
    s = pd.to_numeric(scores["score"], errors="coerce").to_numpy(float)
    if not np.isfinite(s).all():
        return Outcome("mismatch", "per_sample.file", f"the per-group file holds {int((~np.isfinite(s)).sum())} "
                       "non-finite score(s)")
    y = labels.reindex(ids.tolist()).to_numpy(int)
    boot = (record.get("metrics") or {}).get("bootstrap") or {}
    summary = metrics.summarize_groups(y, s, n_resamples=int(boot.get("resamples", metrics.bootstrap.N_RESAMPLES)),
                                       seed=int(boot.get("seed", metrics.bootstrap.SEED)))
    figures = _metric_figures(summary)
    figures["metrics|roc|fpr"] = summary["roc"]["fpr"]
    figures["metrics|roc|tpr"] = summary["roc"]["tpr"]
    figures["counts|n_samples"] = len(s)
    figures["counts|n_scored"] = len(s)
    figures["groups|n_groups"] = len(s)
    figures["groups|n_rows"] = len(rows)
    return compare(figures, record, where.replace("the labels of split", "the group labels of split"))


def recompute(record: dict, scores: pd.DataFrame, labels: pd.Series, where: str, subset=None) -> Outcome:
    """Recompute a record's figures from its per-sample ``scores`` (uid, score) and the
    split's ``labels`` (by uid); compare them with the record. For a record on a subset's
    evaluated rest, ``subset`` is that subset (a ``suite.calibration.Subset``; None or a
    message when it cannot be made)."""
    kind = (record.get("scorer") or {}).get("kind")
    rule = RECOMPUTERS.get(kind)
    if rule is None:
        return Outcome("skipped", None, f"no recomputation rule for records of kind {kind!r}")
    if not {"uid", "score"} <= set(scores.columns):
        return Outcome("mismatch", "per_sample.file", "the per-sample file has no uid and score columns")
    uids = scores["uid"].astype(str)
    if uids.duplicated().any():
        return Outcome("mismatch", "per_sample.file", f"the per-sample file repeats {int(uids.duplicated().sum())} uid(s)")
    y = labels.reindex(uids.tolist())
    if y.isna().any():
        return Outcome("mismatch", "per_sample.file",
                       f"the per-sample file holds {int(y.isna().sum())} uid(s) that are not in the split")
    size = len(labels)
    if "evaluation_subset" in record:
        problem = _subset_problem(record, uids, subset)
        if problem is not None:
            return problem
        size = len(subset.rest)
    s = pd.to_numeric(scores["score"], errors="coerce").to_numpy(float)
    figures = rule(record, y.to_numpy(int), s, size)
    return compare(figures, _with_derived(record), where)


class Recomputer:
    """Checks records against the labels of the splits materialized here (see module doc)."""

    def __init__(self, cache_dir: Path | None = None):
        self.labels = SplitLabels()
        self.cache_dir = cache_dir
        self._subsets: dict = {}

    def subset(self, split_id: str, name: str):
        """The calibration subset as declared now (a ``Subset``), or a message saying why not."""
        if (split_id, name) not in self._subsets:
            try:
                self._subsets[(split_id, name)] = suite.calibration.select(suite.load(suite.get_split(split_id)), name)
            except MembenchError as exc:
                self._subsets[(split_id, name)] = f"calibration subset {name!r} of split {split_id}: {exc.message}"
        return self._subsets[(split_id, name)]

    def _cache_file(self, record: dict, scores_sha: str, content_hash: str, extra: str = "") -> Path | None:
        if self.cache_dir is None:
            return None
        key = sha256_json([RULE_VERSION, content_digest(record), scores_sha, content_hash] + ([extra] if extra else []))
        return Path(self.cache_dir) / key[:2] / f"{key}.json"

    def check(self, path: Path, record: dict, scores_file: Path, scores_sha: str) -> Outcome:
        split_id = record["split"]["id"]
        labels, content_hash, why = self.labels.get(split_id)
        if labels is None:
            return Outcome("skipped", None, why)
        if content_hash != record["split"].get("content_hash"):
            return Outcome("skipped", None, f"split {split_id} materialized here has another content hash "
                           "than the record's (another version of the split)")
        subset, extra = None, ""
        block = record.get("evaluation_subset")
        if isinstance(block, dict):
            subset = self.subset(split_id, str(block.get("name")))
            extra = subset if isinstance(subset, str) else subset.calibration_sha256 + subset.rest_sha256
        cache = self._cache_file(record, scores_sha, content_hash, extra)
        if cache is not None and cache.is_file():
            try:
                return Outcome(**json.loads(cache.read_text()))
            except (json.JSONDecodeError, TypeError):
                pass
        where = f"its per-sample scores and the labels of split {split_id}"
        try:
            scores = pd.read_parquet(scores_file)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
            return Outcome("mismatch", "per_sample.file", f"the per-sample file cannot be read ({type(exc).__name__})")
        if record.get("kind") == "group":
            outcome = recompute_groups(record, scores, suite.load(suite.get_split(split_id)), where)
        else:
            outcome = recompute(record, scores, labels, where, subset)
        if cache is not None and outcome.status != "skipped":
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + ".tmp")
            tmp.write_text(json.dumps(outcome.as_dict()))
            tmp.replace(cache)
        return outcome
