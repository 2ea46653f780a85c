"""Seeded, class-stratified bootstrap intervals.

Each resample draws n_members members and n_nonmembers non-members with replacement, so
every resample keeps the class balance. Intervals are percentile intervals (2.5%, 97.5%)
over 1,000 resamples with a fixed seed: the same inputs always give the same interval.
"""

from __future__ import annotations

import numpy as np

from .roc import auc_rows, resampled_aucs, tpr_rows

N_RESAMPLES = 1000
SEED = 0


def stratified_indices(labels: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(labels == 1)
    neg = np.flatnonzero(labels == 0)
    return np.concatenate(
        [
            rng.choice(pos, size=(n_resamples, len(pos)), replace=True),
            rng.choice(neg, size=(n_resamples, len(neg)), replace=True),
        ],
        axis=1,
    )


def percentile_interval(values, level: float = 0.95) -> list[float]:
    lo, hi = np.nanpercentile(values, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def auc_interval(labels, scores, n_resamples=N_RESAMPLES, seed=SEED) -> list[float]:
    labels, scores = np.asarray(labels), np.asarray(scores, float)
    idx = stratified_indices(labels, n_resamples, seed)
    return percentile_interval(resampled_aucs(labels, scores, idx))


def tpr_interval(labels, scores, alpha, n_resamples=N_RESAMPLES, seed=SEED) -> list[float]:
    labels, scores = np.asarray(labels), np.asarray(scores, float)
    idx = stratified_indices(labels, n_resamples, seed)
    return percentile_interval(tpr_rows(labels[idx], scores[idx], alpha))


def paired_auc_difference(labels, scores_a, scores_b, n_resamples=N_RESAMPLES, seed=SEED) -> dict:
    """AUC(a) - AUC(b) on the same samples, with a paired, stratified bootstrap.

    Each resample draws the same sample indices for both scorers, so the interval accounts
    for their correlation. ``p_value`` is the two-sided bootstrap p-value of "no difference"
    (twice the smaller tail fraction of resampled differences at or beyond zero, capped at 1).
    """
    labels = np.asarray(labels)
    a, b = np.asarray(scores_a, float), np.asarray(scores_b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    labels, a, b = labels[keep], a[keep], b[keep]
    idx = stratified_indices(labels, n_resamples, seed)
    diffs = resampled_aucs(labels, a, idx) - resampled_aucs(labels, b, idx)
    point = float(auc_rows(labels[None], a[None])[0] - auc_rows(labels[None], b[None])[0])
    tail = min(float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0)))
    return {
        "auc_difference": point,
        "ci95": percentile_interval(diffs),
        "p_value": min(1.0, 2 * tail),
        "n_paired": int(keep.sum()),
        "bootstrap": {"resamples": n_resamples, "seed": seed, "stratified": True, "paired": True},
    }
