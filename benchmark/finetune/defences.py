"""The defence comparison of a per-user recipe (Kandpal et al.'s table), from written records.

A family is a per-user recipe with no defence (the parent) and the recipes identical to it
but for their ``defences`` and step count (``extends`` + one knob: the same users, assignment,
base and training; a step-matched cap differs in ``train.steps`` too). SGD and its clipping
variant are a family of their own (the optimizer differs from AdamW's). For a group scorer (user inference by default) each row gives the AUC over users
with its 95% interval (groups resampled), the interval's width, and for a variant: whether
its interval overlaps the parent's, and the paired bootstrap of AUC(variant) - AUC(parent).
The pairing is over users: both targets were scored on the same users with the same labels,
so each resample draws the same users for both (``metrics.paired_auc_difference`` on the two
records' per-user scores aligned by group id); overlapping intervals alone say little.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import metrics, results, suite
from .recipe import Recipe, recipes

SHARED_EXCEPT = ("id", "description", "defences")


def _defence_text(defences: dict) -> str:
    parts = []
    if defences.get("per_user_cap") is not None:
        parts.append(f"at most {defences['per_user_cap']} trained texts per user")
    clip = defences.get("clip")
    if clip:
        parts.append(f"{clip['mode'].replace('_', '-')} gradient clipping at norm {clip['max_norm']}")
    dp = defences.get("dp")
    if dp:
        parts.append(f"DP-SGD at epsilon {dp['epsilon']}, delta {dp.get('delta', 1e-5):g} "
                     f"(per-example clipping at norm {dp.get('max_grad_norm', 1.0)})")
    if defences.get("early_stopping"):
        es = defences["early_stopping"]
        parts.append(f"early stopping on held-out users' loss (every {es['eval_every']} steps, patience {es['patience']})")
    return "; ".join(parts) or "none"


def families(table: dict[str, Recipe] | None = None) -> dict[str, list[Recipe]]:
    """{parent id: [parent, variants...]} over the per-user recipes."""
    table = table if table is not None else recipes()
    def shared(r):  # all but the defences (and a step count, which a step-matched cap sets)
        out = {k: v for k, v in r.data.items() if k not in SHARED_EXCEPT}
        if isinstance(out.get("train"), dict):
            out["train"] = {k: v for k, v in out["train"].items() if k != "steps"}
        return out

    out = {}
    for parent in table.values():
        if not parent.per_user or _defence_text(parent.defences) != "none":
            continue
        variants = [r for r in table.values() if r.id != parent.id and r.per_user and shared(r) == shared(parent)]
        if variants:
            out[parent.id] = [parent] + variants
    return out


def _group_records(results_dir: Path, scorer: str) -> dict[str, tuple[Path, dict]]:
    out = {}
    for path, record in results.iter_records(results_dir):
        if record.get("kind") == "group" and record["scorer"]["name"] == scorer:
            out[record["split"]["id"]] = (path, record)
    return out


def table(results_dir, *, scorer: str = "user_inference", recipes_table: dict | None = None) -> list[dict]:
    """One row per recipe of every defence family with a record of ``scorer`` in
    ``results_dir`` (see the module doc); a recipe without a record is a row saying so."""
    found = _group_records(Path(results_dir), scorer)
    rows = []
    for parent_id, family in families(recipes_table).items():
        parent = found.get(family[0].split_id)
        parent_scores = None
        if parent is not None:
            parent_scores = results.read_scores(*parent)
        for recipe in family:
            row = {"family": parent_id, "recipe": recipe.id, "defence": _defence_text(recipe.defences),
                   "scorer": scorer}
            hit = found.get(recipe.split_id)
            if hit is None:
                rows.append({**row, "missing": f"no {scorer} record of {recipe.split_id} in {results_dir}"})
                continue
            path, record = hit
            m, g = record["metrics"], record.get("groups") or {}
            lo, hi = m["auc_ci95"]
            row.update(n_users=g.get("n_groups"), n_member_users=m["n_members"], auc=m["auc"], auc_ci95=[lo, hi],
                       ci95_width=hi - lo, tpr_at_10pct_fpr=m["tpr_at_fpr"]["0.1"]["value"],
                       excess_over_blind=m.get("excess_over_blind"))
            if recipe.id != parent_id and parent is not None:
                plo, phi = parent[1]["metrics"]["auc_ci95"]
                row["intervals_overlap_parent"] = bool(lo <= phi and plo <= hi)
                scores = results.read_scores(path, record)
                shared = sorted(set(scores.index) & set(parent_scores.index))
                labels = group_labels(parent[1], shared) if shared else None
                if labels is not None:
                    diff = metrics.paired_auc_difference(labels, scores.reindex(shared).to_numpy(float),
                                                         parent_scores.reindex(shared).to_numpy(float))
                    row["vs_parent"] = {"auc_difference": diff["auc_difference"], "ci95": diff["ci95"],
                                        "p_value": diff["p_value"], "n_paired_users": diff["n_paired"],
                                        "pairing": "the same users, resampled together (stratified by label)"}
            rows.append(row)
    return rows


def group_labels(record: dict, groups: list[str]) -> np.ndarray | None:
    """The labels of ``groups`` (the record's split's ``group_labels.parquet``; every variant
    has the parent's users and labels), or None when the split is not materialized here, or
    lacks some of these users."""
    split_id = record["split"]["id"]
    if not suite.is_materialized(split_id):
        return None
    labels = suite.user_level.labels(suite.ensure(split_id)).reindex(groups)
    if labels.isna().any():  # users the materialized split does not have: another version of it
        return None
    return labels.to_numpy(int)
