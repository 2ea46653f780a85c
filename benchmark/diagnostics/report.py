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

from .. import metrics, results, suite
from ..errors import MembenchError
from ..hashing import sha256_files
from ..home import diagnostics_file
from . import grouped, textstats
from . import tokenizer as tokenizing
from .baselines import BASELINES
from .crossval import N_FOLDS, SEED, content_order, default_jobs, folds, out_of_fold_table
from .grouped import UNGROUPED_NOTE
from .verdict import RULE, verdict

SCHEMA = "membench-diagnostics-v2"
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


def baseline_block(name: str, labels, scores, groups=None, description: str | None = None) -> tuple[dict, dict]:
    """A baseline's figures (and the full metric summary its result record carries). With
    ``groups``: the text-level interval also with whole groups resampled, and the group level
    (``grouped.group_block``)."""
    summary = metrics.summarize(labels, scores)
    block = {
        "description": description or BASELINES[name].description,
        "auc": summary["auc"],
        "auc_ci95": summary["auc_ci95"],
        "tpr_at_1pct_fpr": summary["tpr_at_fpr"][PRIMARY],
        "tpr_at_fpr": summary["tpr_at_fpr"],
        "tpr_convention": summary["tpr_convention"],
    }
    if groups is not None:
        block["auc_ci95_groups_resampled"] = grouped.group_resampled_auc_interval(labels, scores, groups)
        block["group"] = grouped.group_block(labels, scores, groups)
    return block, summary


def _interval(block: dict) -> list:
    """The interval a verdict reads: groups resampled where the split has groups."""
    return block.get("auc_ci95_groups_resampled") or block["auc_ci95"]


def _best(blocks: dict, unit: str) -> tuple[str | None, float | None, list | None]:
    """(name, AUC, interval) of the best baseline at ``unit`` (``sample`` or ``group``)."""
    if unit == "sample":
        table = {n: (b["auc"], _interval(b)) for n, b in blocks.items()}
    else:
        table = {n: (b["group"]["auc"], b["group"]["auc_ci95"]) for n, b in blocks.items()
                 if (b.get("group") or {}).get("auc") is not None}
    if not table:
        return None, None, None
    name = max(table, key=lambda n: table[n][0])
    return name, table[name][0], table[name][1]


def _unit_fields(blocks: dict, groups) -> dict:
    """The top-level figures of both units and the note that says which is which."""
    name, value, ci = _best(blocks, "sample")
    out = {"blind_auc": value, "blind_auc_ci95": ci, "blind_best": name, "verdict": verdict(value, ci),
           "verdict_unit": "text"}
    g_name, g_value, g_ci = _best(blocks, "group") if groups is not None else (None, None, None)
    out.update(blind_auc_group=g_value, blind_auc_group_ci95=g_ci, blind_best_group=g_name,
               verdict_group=verdict(g_value, g_ci) if g_value is not None else None)
    if groups is None:
        out["unit_note"] = UNGROUPED_NOTE
        return out
    out["unit_note"] = grouped.NOTE + "; blind_auc_ci95 resamples whole groups"
    if g_value is None:
        why = next((b["group"]["why"] for b in blocks.values() if b["group"].get("why")), "not defined")
        out["unit_note"] += f"; no group level: {why}"
    return out


def _tokenizer_entry(sha256: str, target_ids, labels, matrix, scores, groups) -> tuple[dict, dict]:
    block, summary = baseline_block(tokenizing.NAME, labels, scores, groups, tokenizing.DESCRIPTION)
    block.update(name=tokenizing.NAME, tokenizer_sha256=sha256, targets=sorted(target_ids), features=list(tokenizing.FEATURES),
                 feature_aucs=tokenizing.feature_aucs(matrix, labels), verdict=verdict(block["auc"], _interval(block)))
    if groups is not None and block["group"].get("auc") is not None:
        block["verdict_group"] = verdict(block["group"]["auc"], block["group"]["auc_ci95"])
    return block, summary


def diagnose(texts, labels, *, groups=None, tokenizers=(), subject: dict | None = None, where: str = "input",
             baselines=None, progress: bool = False, n_jobs: int | None = None) -> dict:
    """Every blind baseline (out of fold), duplicates, lengths, 13-gram overlap, the verdict.

    ``groups`` (one per text: the user, author, book or repository membership was assigned
    by) draws the folds over groups and adds the group level (``grouped``). ``tokenizers``
    (``tokenizer.TargetTokenizer``: a target's tokenizer and its hash) adds the tokenizer
    baseline of each, on the same folds, under ``tokenizer_baselines`` keyed by hash.

    The returned dict also holds ``_scores`` ({baseline: out-of-fold scores}), ``_summaries``
    (full metric blocks) and ``_index`` (rows analyzed, after deduplication), which the
    writers use and drop before saving.
    """
    from joblib import Parallel, delayed

    texts = [str(t) for t in texts]
    labels = np.asarray(labels).astype(int)
    check_labels(texts, labels, where)
    if groups is not None:
        groups = check_groups(groups, len(texts), where)
    keep, conflicting = dedup(texts, labels)
    # content order (uid, as a materialized split is sorted): no figure, bootstrap intervals
    # included, depends on the order the rows arrived in
    keep = keep[content_order([texts[i] for i in keep], labels[keep])]
    t_kept, y_kept = [texts[i] for i in keep], labels[keep]
    g_kept = groups[keep] if groups is not None else None
    check_labels(t_kept, y_kept, f"{where} (after dropping duplicates)")
    try:
        shared_folds = folds(t_kept, y_kept, groups=g_kept, n_folds=N_FOLDS, seed=SEED)
    except ValueError as exc:
        raise MembenchError(f"{where}: {exc}", "a grouped diagnosis needs groups of both classes") from None
    names = list(baselines or BASELINES)
    n_jobs = n_jobs or default_jobs(t_kept)
    scores = out_of_fold_table(t_kept, y_kept, {n: BASELINES[n].make for n in names}, shared_folds,
                               n_jobs=n_jobs, progress=progress)
    matrices = {tok.sha256: tokenizing.features(tok.tokenizer, t_kept) for tok in tokenizers}
    tok_scores = {sha: out_of_fold_table(m, y_kept, {"model": tokenizing.classifier}, shared_folds)["model"]
                  for sha, m in matrices.items()}
    # the metrics of each baseline (bootstrap intervals) and the text statistics: independent
    # of each other, so they share the workers too
    *done, dup, lengths, overlap = Parallel(n_jobs=n_jobs)(
        [delayed(baseline_block)(name, y_kept, scores[name], g_kept) for name in names]
        + [delayed(_tokenizer_entry)(tok.sha256, tok.targets, y_kept, matrices[tok.sha256], tok_scores[tok.sha256], g_kept)
           for tok in tokenizers]
        + [delayed(textstats.duplicates)(texts, labels), delayed(textstats.lengths)(t_kept, y_kept),
           delayed(textstats.ngram_overlap)(t_kept, y_kept)]
    )
    done, tok_done = done[:len(names)], done[len(names):]
    blocks = {name: block for name, (block, _) in zip(names, done)}
    summaries = {name: summary for name, (_, summary) in zip(names, done)}
    n_groups = None if g_kept is None else len(set(g_kept))
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
            **({"analyzed_groups": n_groups} if n_groups is not None else {}),
        },
        **_unit_fields(blocks, g_kept),
        "verdict_rule": RULE,
        "baselines": blocks,
        "tokenizer_baselines": {tok.sha256: block for tok, (block, _) in zip(tokenizers, tok_done)},
        "duplicates": dup,
        "lengths": lengths,
        "ngram_overlap": overlap,
        "cross_validation": {
            "folds": len(shared_folds), "seed": SEED, "stratified": True, "shuffled": True,
            "grouped": g_kept is not None,
            "order": "uid (hash of the text): the folds do not depend on the order of the rows",
            "note": "every score is out of fold; exact duplicates dropped first; the same folds for every baseline"
                    + ("; folds drawn over groups (StratifiedGroupKFold): no group on both sides of a fold"
                       if g_kept is not None else ""),
        },
        "_scores": scores,
        "_summaries": summaries,
        "_index": keep,
    }


def check_groups(groups, n: int, where: str) -> np.ndarray:
    """One group id (a string) per text; one clear error for a missing or misaligned one."""
    values = list(groups)
    if len(values) != n:
        raise MembenchError(f"{where}: {n} texts but {len(values)} group ids", "give every text its group")
    missing = [i for i, g in enumerate(values) if g is None or (isinstance(g, float) and g != g)
               or not str(g).strip()]
    if missing:
        raise MembenchError(f"{where}: {len(missing)} text(s) have no group (first: row {missing[0]})",
                            "give every text its group, or diagnose without groups")
    return np.asarray([str(g) for g in values], dtype=object)


def public(diag: dict) -> dict:
    """The diagnostics without the private per-sample arrays (what is saved and printed)."""
    return {k: v for k, v in diag.items() if not k.startswith("_")}


def split_groups(split):
    """The split's group of every text (its ``group`` column: users of a per-user recipe, or the
    column a registry entry names as ``fields.group``), or None when membership is per text."""
    return split.samples["group"].astype(str).tolist() if "group" in split.samples.columns else None


def diagnose_split(split, *, tokenizers=(), progress: bool = False, n_jobs: int | None = None) -> dict:
    """``diagnose`` over a materialized split: grouped where it has groups (``split_groups``)."""
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
    groups = split_groups(split)
    if groups is not None:
        subject["groups"] = {"column": "group", "n_groups": len(set(groups))}
    diag = diagnose(split.samples["text"].tolist(), labels, groups=groups, tokenizers=tokenizers, subject=subject,
                    where=f"split {split.id}", progress=progress, n_jobs=n_jobs)
    diag["_uids"] = [uids[i] for i in diag["_index"]]
    return diag


def _same_subject(old: dict, new: dict) -> bool:
    a, b = old.get("subject") or {}, new.get("subject") or {}
    keys = ("kind", "id", "content_hash", "path", "sha256")
    return old.get("schema") == new.get("schema") and all(a.get(k) == b.get(k) for k in keys)


def _earlier_tokenizers(path: Path, payload: dict) -> dict:
    """Tokenizer baselines a file at ``path`` holds for the same subject (same split version):
    a diagnosis without ``--target`` keeps the tokenizers diagnosed before."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(old, dict) or not _same_subject(old, payload):
        return {}
    kept = old.get("tokenizer_baselines")
    return kept if isinstance(kept, dict) else {}


def save(diag: dict, split_id: str, results_dir: Path | None = None) -> list[Path]:
    """Write the diagnostics JSON to MEMBENCH_HOME/diagnostics (and results_dir/_diagnostics).

    Tokenizer baselines are keyed by tokenizer hash: those already in a file for the same
    subject are kept (a new diagnosis of the same tokenizer replaces its entry)."""
    payload = public(diag)
    payload.setdefault("provenance", {**results.environment(), "created_at": _now()})
    paths = [diagnostics_file(split_id)]
    if results_dir is not None:
        paths.append(diagnostics_file(split_id, results_dir))
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = {**payload, "tokenizer_baselines": {**_earlier_tokenizers(path, payload),
                                                      **payload.get("tokenizer_baselines", {})}}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(written, indent=2, default=_jsonable) + "\n")
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
    """One result record per blind baseline (target ``none``), with per-sample scores (text
    level; the group level of a grouped split is in the diagnostics JSON and the record's
    ``diagnostics`` block)."""
    env = {**results.environment(), "created_at": _now()}
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
                           "model": baseline.description,
                           **({"fold_unit": "group"} if diag["cross_validation"].get("grouped") else {})},
                "requires": [],
                # the baseline's own code and the cross-validation that scores with it
                "code_sha256": sha256_files([module_dir / f"{baseline.module}.py", module_dir / "crossval.py",
                                             module_dir / "grouped.py"]),
                "kind": "blind_baseline",
            },
            "metrics": summary,
            "counts": {"n_samples": len(split.samples), "n_scored": len(diag["_uids"]),
                       "excluded_no_scored_tokens": 0},
            "diagnostics": {key: diag[key] for key in (
                "verdict", "verdict_unit", "blind_auc", "blind_best", "blind_auc_group", "verdict_group",
                "unit_note")},
            "provenance": env,
        })
    return records


def write_blind_results(split_id: str, results_dir: Path, *, tokenizers=(), progress: bool = False,
                        n_jobs: int | None = None) -> list[dict]:
    """Diagnose a materialized split; write its blind result records and diagnostics JSON
    (with the tokenizer baseline of each of ``tokenizers``).

    Returns the records, the best baseline's first.
    """
    split = suite.ensure(split_id)
    diag = diagnose_split(split, tokenizers=tokenizers, progress=progress, n_jobs=n_jobs)
    records = blind_records(split, diag)
    for rec in records:
        results.write(results_dir, rec, diag["_uids"], diag["_scores"][rec["scorer"]["name"]])
    save(diag, split_id, results_dir)
    records.sort(key=lambda r: r["scorer"]["name"] != diag["blind_best"])
    return records
