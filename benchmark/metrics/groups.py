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

GROUP_BOOTSTRAP_NOTE = "groups resampled with replacement, stratified by group label"


def summarize_groups(labels, scores, *, n_resamples: int | None = None, seed: int | None = None) -> dict:
    """``summarize`` over per-group ``labels`` and ``scores`` (aligned, all finite), marked
    ``unit: group`` with the bootstrap's resampling unit stated."""
    from . import N_RESAMPLES, SEED, roc_points, summarize

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
