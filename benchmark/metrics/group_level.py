"""Metrics over groups (users): a group-level record's figures.

A group-level record (user inference, any scorer declaring ``groups``) has one score and one
label per group, so every figure counts groups, never samples: the AUC over groups (full
sample, Mann-Whitney), TPR at FPR <= 10%, 1% and 0.1% over groups, *unresolvable* when the
budget allows fewer than one false-positive group (alpha x non-member groups < 1; with a few
dozen users only the 10% budget resolves), and 95% intervals from 1,000 seeded bootstrap
resamples of groups, stratified by the groups' class (each resample draws member groups and
non-member groups with replacement, so a user's samples move together). The computation is
``summarize`` on the per-group arrays; this module names the unit and the resampling.
"""

from __future__ import annotations

import numpy as np

from .bootstrap import N_RESAMPLES, SEED
from .roc import auc, roc_points
from .summary import summarize

GROUP_BOOTSTRAP_NOTE = "groups resampled with replacement, stratified by group label"


def summarize_groups(labels, scores, *, n_resamples: int | None = None, seed: int | None = None) -> dict:
    """``summarize`` over per-group ``labels`` and ``scores`` (aligned, all finite), marked
    ``unit: group`` with the bootstrap's resampling unit stated."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=float)
    if not np.isfinite(scores).all():
        raise ValueError("group scores must be finite")
    out = summarize(labels, scores, n_resamples=N_RESAMPLES if n_resamples is None else n_resamples,
                    seed=SEED if seed is None else seed)
    out["unit"] = "group"
    out["bootstrap"] = {**out["bootstrap"], "unit": "group", "note": GROUP_BOOTSTRAP_NOTE}
    out["roc"] = roc_points(labels, scores)
    return out


def auc_by_bins(labels, scores, values, n_bins: int = 3) -> list[dict]:
    """AUC over groups within bins of ``values`` (e.g. how many texts a user contributed, or
    how much of an outlier the user is): quantile edges of ``values`` (ties kept together, so
    there may be fewer bins), each bin's AUC over its groups (None when a bin lacks a class)."""
    labels, scores, values = np.asarray(labels).astype(int), np.asarray(scores, float), np.asarray(values, float)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    out = []
    for k in range(len(edges) - 1):
        lo, hi = edges[k], edges[k + 1]
        last = k == len(edges) - 2
        mask = (values >= lo) & ((values <= hi) if last else (values < hi))
        y, s = labels[mask], scores[mask]
        n_pos, n_neg = int(y.sum()), int((y == 0).sum())
        out.append({"low": float(lo), "high": float(hi), "closed_high": bool(last), "n_members": n_pos,
                    "n_nonmembers": n_neg, "auc": auc(y, s) if n_pos and n_neg else None})
    return out
