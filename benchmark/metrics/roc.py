"""ROC AUC and TPR at a false-positive budget.

Conventions (stated in every output):
- AUC is computed from the full sample (ties count one half), never a bootstrap mean.
- TPR at FPR <= alpha is the largest TPR among ROC points whose FPR is at most alpha.
- When alpha * n_nonmembers < 1 the budget allows no false positive at all, so the value is
  unresolvable and reported as ``None`` with ``resolvable: false``.
"""

from __future__ import annotations

import numpy as np

TPR_CONVENTION = "largest TPR among ROC points with FPR <= budget"


def auc(labels, scores) -> float:
    """ROC AUC via the Mann-Whitney statistic (equal to sklearn's roc_auc_score)."""
    return float(auc_rows(np.asarray(labels)[None, :], np.asarray(scores, float)[None, :])[0])


def auc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of each row of a [resamples x n] matrix pair (vectorized, average ranks for ties)."""
    labels = labels.astype(bool)
    ranks = average_ranks(scores)
    n_pos = labels.sum(1)
    n_neg = labels.shape[1] - n_pos
    pos_rank_sum = np.where(labels, ranks, 0).sum(1)
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def resampled_aucs(labels: np.ndarray, scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``auc_rows(labels[idx], scores[idx])``, bit for bit, without sorting each resample.

    The scores are sorted once; a resample only changes how often each sample is drawn. With
    those counts summed per distinct score, the drawn samples below a score and the drawn ties
    of it give its average rank in the resample (before + (ties + 1) / 2), and the members'
    rank sum is the sum over distinct scores of drawn members x that rank. Every term is an
    integer or a half-integer, so the sums are exact in float64 whatever their order, and the
    AUC is the same expression of the same numbers as in ``auc_rows``."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, float)
    idx = np.asarray(idx)
    rows, n = idx.shape[0], scores.shape[0]
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])  # one per distinct score
    flat = (idx + (np.arange(rows) * n)[:, None]).ravel()
    drawn = np.bincount(flat, minlength=rows * n).reshape(rows, n)[:, order]  # times each sample is drawn
    members = np.where(labels[order], drawn, 0)
    ties = np.add.reduceat(drawn, starts, axis=1)  # drawn samples per distinct score
    tied_members = np.add.reduceat(members, starts, axis=1)
    before = np.cumsum(ties, axis=1) - ties
    pos_rank_sum = (tied_members * (before + (ties + 1) / 2)).sum(1)
    n_pos = labels[idx].sum(1)
    n_neg = idx.shape[1] - n_pos
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


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties given their average rank: exactly
    ``scipy.stats.rankdata(x, axis=-1)`` (tested), without importing scipy on a warm run."""
    x = np.asarray(x, float)
    n = x.shape[-1]
    order = np.argsort(x, axis=-1, kind="mergesort")
    xs = np.take_along_axis(x, order, axis=-1)
    idx = np.broadcast_to(np.arange(n), xs.shape)
    first = np.ones(xs.shape, bool)  # a tie block starts here
    first[..., 1:] = xs[..., 1:] != xs[..., :-1]
    last = np.ones(xs.shape, bool)  # a tie block ends here
    last[..., :-1] = first[..., 1:]
    start = np.maximum.accumulate(np.where(first, idx, 0), axis=-1)
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, idx, n - 1), -1), axis=-1), -1)
    ranks = np.empty(xs.shape, float)
    np.put_along_axis(ranks, order, (start + end) / 2 + 1, axis=-1)
    return ranks


def roc_points(labels, scores) -> dict:
    """The ROC curve exactly as ``sklearn.metrics.roc_curve`` gives it (collinear points
    dropped; tested against it), without importing scikit-learn on a warm run."""
    y = np.asarray(labels) == 1
    s = np.asarray(scores, float)
    desc = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[desc], y[desc]
    cut = np.r_[np.where(np.diff(s))[0], y.size - 1]  # the last index of each distinct score
    tps = np.cumsum(y, dtype=np.float64)[cut]
    fps = 1 + cut - tps
    if len(fps) > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps = fps[keep], tps[keep]
    tps, fps = np.r_[0, tps], np.r_[0, fps]
    return {"fpr": (fps / fps[-1]).tolist(), "tpr": (tps / tps[-1]).tolist()}
