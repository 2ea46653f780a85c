"""ROC AUC and TPR at a false-positive budget.

Conventions (stated in every output):
- AUC is computed from the full sample (ties count one half), never a bootstrap mean.
- TPR at FPR <= alpha is the largest TPR among ROC points whose FPR is at most alpha.
- When alpha * n_nonmembers < 1 the budget allows no false positive at all, so the value is
  unresolvable and reported as ``None`` with ``resolvable: false``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_curve

TPR_CONVENTION = "largest TPR among ROC points with FPR <= budget"


def auc(labels, scores) -> float:
    """ROC AUC via the Mann-Whitney statistic (equal to sklearn's roc_auc_score)."""
    return float(auc_rows(np.asarray(labels)[None, :], np.asarray(scores, float)[None, :])[0])


def auc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of each row of a [resamples x n] matrix pair (vectorized, average ranks for ties)."""
    labels = labels.astype(bool)
    ranks = rankdata(scores, axis=1)
    n_pos = labels.sum(1)
    n_neg = labels.shape[1] - n_pos
    pos_rank_sum = np.where(labels, ranks, 0).sum(1)
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def resolvable(alpha: float, n_nonmembers: int) -> bool:
    return alpha * n_nonmembers >= 1


def tpr_at_fpr(labels, scores, alpha: float) -> float | None:
    labels = np.asarray(labels)
    if not resolvable(alpha, int((labels == 0).sum())):
        return None
    return float(tpr_rows(labels[None, :], np.asarray(scores, float)[None, :], alpha)[0])


def tpr_rows(labels: np.ndarray, scores: np.ndarray, alpha: float) -> np.ndarray:
    """TPR at FPR <= alpha for each row of a [resamples x n] pair, exactly and vectorized.

    With k = floor(alpha * n_nonmembers) false positives allowed, the lowest admissible
    threshold lies just above the (k+1)-th highest non-member score v, so the largest TPR on
    the full ROC (every threshold, none dropped) is the fraction of members scoring above v.
    Every row must hold the same number of non-members (true of stratified resamples).
    """
    labels = labels.astype(bool)
    n_neg = int((~labels[0]).sum())
    k = int(np.floor(alpha * n_neg + 1e-9))
    if k >= n_neg:
        return np.ones(len(labels))
    neg = np.where(labels, -np.inf, scores)
    v = -np.partition(-neg, k, axis=1)[:, k]  # (k+1)-th highest non-member score per row
    above = (scores > v[:, None]) & labels
    return above.sum(1) / labels.sum(1)


def roc_points(labels, scores) -> dict:
    fpr, tpr, _ = roc_curve(np.asarray(labels), np.asarray(scores, float))
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
