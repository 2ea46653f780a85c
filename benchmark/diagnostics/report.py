"""One split's (or one file's) diagnostics: every blind baseline out of fold, the text
statistics, the verdict; and where they are written.

Written to ``MEMBENCH_HOME/diagnostics/<split id>.json`` (read by ``membench cards``) and,
with a results directory, to ``<results_dir>/_diagnostics/<split id>.json`` (read by the site
for split pages and "excess over blind") beside one result record per baseline (scorer kind
``blind_baseline``, target ``none``); ``home.diagnostics_file`` decides both paths.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from .. import metrics
from ..errors import MembenchError
from ..hashing import sha256_files
from ..home import diagnostics_file
from . import textstats
from .baselines import BASELINES
from .crossval import N_FOLDS, SEED, content_order, default_jobs, folds, out_of_fold_table
from .verdict import RULE, verdict

SCHEMA = "membench-diagnostics-v1"
BLIND_TARGET = "none"
PRIMARY = "0.01"  # the FPR budget shown beside every AUC


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def check_labels(texts, labels, where: str) -> None:
    """One clear error for input no diagnosis can use (``where`` names the split or file)."""
    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise MembenchError(f"{where}: {len(texts)} texts but {len(labels)} labels")
    counts = {int(c): int((labels == c).sum()) for c in (0, 1)}
    if min(counts.values()) < 2:
        raise MembenchError(
            f"{where}: needs at least 2 members and 2 non-members, found "
            f"{counts[1]} members and {counts[0]} non-members",
            "a blind baseline compares the two classes: give it a file holding both",
        )


def dedup(texts, labels):
    """Indices kept for analysis: the first of each exact duplicate, texts with two labels dropped.

    Duplicates must go before cross-validation: a copy in a training fold would let a model
    score its twin from memory.
    """
    first: dict[str, int] = {}
    label_sets: dict[str, set] = {}
    for i, (t, lab) in enumerate(zip(texts, labels)):
        first.setdefault(t, i)
        label_sets.setdefault(t, set()).add(int(lab))
    keep = sorted(i for t, i in first.items() if len(label_sets[t]) == 1)
    conflicting = sum(1 for s in label_sets.values() if len(s) > 1)
    return np.array(keep, dtype=int), conflicting


def baseline_block(name: str, labels, scores) -> dict:
    summary = metrics.summarize(labels, scores)
    return {
        "description": BASELINES[name].description,
        "auc": summary["auc"],
        "auc_ci95": summary["auc_ci95"],
        "tpr_at_1pct_fpr": summary["tpr_at_fpr"][PRIMARY],
        "tpr_at_fpr": summary["tpr_at_fpr"],
        "tpr_convention": summary["tpr_convention"],
    }, summary


def diagnose(texts, labels, *, subject: dict | None = None, where: str = "input",
             baselines=None, progress: bool = False, n_jobs: int | None = None) -> dict:
    """Every blind baseline (out of fold), duplicates, lengths, 13-gram overlap, the verdict.

    The returned dict also holds ``_scores`` ({baseline: out-of-fold scores}), ``_summaries``
    (full metric blocks) and ``_index`` (rows analyzed, after deduplication), which the
    writers use and drop before saving.
    """
    texts = [str(t) for t in texts]
    labels = np.asarray(labels).astype(int)
    check_labels(texts, labels, where)
    keep, conflicting = dedup(texts, labels)
    # content order (uid, as a materialized split is sorted): no figure, bootstrap intervals
    # included, depends on the order the rows arrived in
    keep = keep[content_order([texts[i] for i in keep], labels[keep])]
    t_kept, y_kept = [texts[i] for i in keep], labels[keep]
    check_labels(t_kept, y_kept, f"{where} (after dropping duplicates)")
    shared_folds = folds(t_kept, y_kept, n_folds=N_FOLDS, seed=SEED)
    names = list(baselines or BASELINES)
    n_jobs = n_jobs or default_jobs(t_kept)
    scores = out_of_fold_table(t_kept, y_kept, {n: BASELINES[n].make for n in names}, shared_folds,
                               n_jobs=n_jobs, progress=progress)
    # the metrics of each baseline (bootstrap intervals) and the text statistics: independent
    # of each other, so they share the workers too
    *done, dup, lengths, overlap = Parallel(n_jobs=n_jobs)(
        [delayed(baseline_block)(name, y_kept, scores[name]) for name in names]
        + [delayed(textstats.duplicates)(texts, labels), delayed(textstats.lengths)(t_kept, y_kept),
           delayed(textstats.ngram_overlap)(t_kept, y_kept)]
    )
    blocks = {name: block for name, (block, _) in zip(names, done)}
    summaries = {name: summary for name, (_, summary) in zip(names, done)}
    best = max(names, key=lambda n: blocks[n]["auc"])
    return {
        "schema": SCHEMA,
        "subject": subject or {"kind": "texts"},
        "counts": {
            "rows": len(texts),
            "members": int(labels.sum()),
            "nonmembers": int((labels == 0).sum()),
            "analyzed": len(keep),
            "analyzed_members": int(y_kept.sum()),
            "analyzed_nonmembers": int((y_kept == 0).sum()),
            "dropped_rows": len(texts) - len(keep),
            "dropped_conflicting_texts": conflicting,
            "dedup_rule": "exact duplicates keep their first row; a text with both labels is dropped",
        },
        "blind_auc": blocks[best]["auc"],
        "blind_auc_ci95": blocks[best]["auc_ci95"],
        "blind_best": best,
        "verdict": verdict(blocks[best]["auc"], blocks[best]["auc_ci95"]),
        "verdict_rule": RULE,
        "baselines": blocks,
        "duplicates": dup,
        "lengths": lengths,
        "ngram_overlap": overlap,
        "cross_validation": {
            "folds": len(shared_folds), "seed": SEED, "stratified": True, "shuffled": True,
            "order": "uid (hash of the text): the folds do not depend on the order of the rows",
            "note": "every score is out of fold; exact duplicates dropped first; the same folds for every baseline",
        },
        "_scores": scores,
        "_summaries": summaries,
        "_index": keep,
    }


def public(diag: dict) -> dict:
    """The diagnostics without the private per-sample arrays (what is saved and printed)."""
    return {k: v for k, v in diag.items() if not k.startswith("_")}


def diagnose_split(split, *, progress: bool = False, n_jobs: int | None = None) -> dict:
    uids = split.samples["uid"].tolist()
    labels = split.labels().reindex(uids).to_numpy()
    manifest = split.manifest
    subject = {
        "kind": "split",
        "id": split.id,
        "content_hash": split.content_hash,
        "track": split.spec.track,
        "family": split.spec.family,
        "counts_before_dedup": manifest.get("counts_before_dedup"),
        "counts": manifest.get("counts"),
        "duplicates_dropped_at_materialization": manifest.get("duplicates_dropped"),
    }
    diag = diagnose(split.samples["text"].tolist(), labels, subject=subject,
                    where=f"split {split.id}", progress=progress, n_jobs=n_jobs)
    diag["_uids"] = [uids[i] for i in diag["_index"]]
    return diag


def save(diag: dict, split_id: str, results_dir: Path | None = None) -> list[Path]:
    """Write the diagnostics JSON to MEMBENCH_HOME/diagnostics (and results_dir/_diagnostics)."""
    from ..results import environment

    payload = public(diag)
    payload.setdefault("provenance", {**environment(), "created_at": _now()})
    paths = [diagnostics_file(split_id)]
    if results_dir is not None:
        paths.append(diagnostics_file(split_id, results_dir))
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
        tmp.replace(path)
    return paths


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def load_saved(split_id: str) -> dict | None:
    """The latest saved diagnostics of ``split_id`` (MEMBENCH_HOME/diagnostics), or None."""
    path = diagnostics_file(split_id)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MembenchError(f"diagnostics file {path} is not valid JSON ({exc.msg})",
                            f"run `membench diagnose {split_id}` again") from None


def blind_records(split, diag: dict) -> list[dict]:
    """One result record per blind baseline (target ``none``), with per-sample scores."""
    from ..results import environment

    env = {**environment(), "created_at": _now()}
    module_dir = Path(__file__).parent
    split_block = {"id": split.id, "content_hash": split.content_hash,
                   "track": split.spec.track, "family": split.spec.family}
    labels = split.labels().reindex(diag["_uids"]).to_numpy()
    records = []
    for name, summary in diag["_summaries"].items():
        summary = dict(summary)
        summary["roc"] = metrics.roc_points(labels, np.asarray(diag["_scores"][name]))
        baseline = BASELINES[name]
        records.append({
            "split": split_block,
            "target": {"id": BLIND_TARGET, "note": "blind baseline: no model access"},
            "scorer": {
                "name": name,
                "version": "2",
                "params": {"folds": diag["cross_validation"]["folds"], "seed": SEED,
                           "model": baseline.description},
                "requires": [],
                # the baseline's own code and the cross-validation that scores with it
                "code_sha256": sha256_files([module_dir / f"{baseline.module}.py", module_dir / "crossval.py"]),
                "kind": "blind_baseline",
            },
            "metrics": summary,
            "counts": {"n_samples": len(split.samples), "n_scored": len(diag["_uids"]),
                       "excluded_no_scored_tokens": 0},
            "diagnostics": {"verdict": diag["verdict"], "blind_auc": diag["blind_auc"],
                            "blind_best": diag["blind_best"]},
            "provenance": env,
        })
    return records


def write_blind_results(split_id: str, results_dir: Path, *, progress: bool = False,
                        n_jobs: int | None = None) -> list[dict]:
    """Diagnose a materialized split; write its blind result records and diagnostics JSON.

    Returns the records, the best baseline's first.
    """
    from .. import results, suite

    split = suite.ensure(split_id)
    diag = diagnose_split(split, progress=progress, n_jobs=n_jobs)
    records = blind_records(split, diag)
    for rec in records:
        results.write(results_dir, rec, diag["_uids"], diag["_scores"][rec["scorer"]["name"]])
    save(diag, split_id, results_dir)
    records.sort(key=lambda r: r["scorer"]["name"] != diag["blind_best"])
    return records
