"""Blind baselines at the unit of membership: groups (users, authors, books, repositories).

On a split whose membership is assigned per group, a blind baseline is judged twice, from the
same out-of-fold scores (folds drawn over groups, ``crossval.folds``):

- text level: the AUC over texts, as for any split; its interval also with whole groups
  resampled (``group_resampled_auc_interval``), since a group's texts are not independent
  draws and resampling texts one by one makes the interval too narrow;
- group level: a group's score is the mean out-of-fold score of its texts, its label the one
  label its texts share; the AUC over groups, with groups resampled (stratified by label), is
  what a group scorer (user inference) is compared with.

A group whose texts carry both labels (membership assigned per text inside a natural group)
has no group label: the group level is then not defined, and said so.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..metrics.bootstrap import N_RESAMPLES, SEED, percentile_interval

NOTE = ("text level: AUC over texts, folds drawn over groups so that no group is on both sides "
        "of a fold (the figure a text scorer is compared with); group level: a group's score is the "
        "mean out-of-fold score of its texts, AUC over groups (the figure a group scorer such as "
        "user inference is compared with)")
UNGROUPED_NOTE = "membership is assigned per text: every figure is at the text level, over stratified folds of texts"


def group_labels(labels, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group ids sorted, each row's index into them, each group's label or -1 when its texts
    carry both labels)."""
    ids, codes = np.unique(np.asarray([str(g) for g in groups], dtype=object), return_inverse=True)
    labels = np.asarray(labels).astype(int)
    total = np.bincount(codes, minlength=len(ids))
    members = np.bincount(codes, weights=labels, minlength=len(ids))
    glabel = np.where(members == total, 1, np.where(members == 0, 0, -1))
    return ids, codes, glabel


def group_means(scores, codes, n_groups: int) -> np.ndarray:
    """Mean score of each group's texts."""
    return np.bincount(codes, weights=np.asarray(scores, float), minlength=n_groups) / np.bincount(
        codes, minlength=n_groups)


def group_resampled_aucs(labels, scores, groups, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """Text-level AUCs of ``n_resamples`` resamples of whole groups, drawn with replacement
    (stratified by group label when every group has one label). A group drawn k times counts
    each of its texts k times (``aucs_of_group_counts``)."""
    labels = np.asarray(labels).astype(int)
    _, codes, glabel = group_labels(labels, groups)
    n_groups = len(glabel)
    strata = ([np.flatnonzero(glabel == c) for c in (0, 1)] if (glabel >= 0).all()
              else [np.arange(n_groups)])
    rng = np.random.default_rng(seed)
    draws = np.concatenate([rng.choice(stratum, size=(n_resamples, len(stratum)), replace=True) for stratum in strata],
                           axis=1)
    offsets = np.arange(n_resamples)[:, None] * n_groups
    counts = np.bincount((offsets + draws).ravel(), minlength=n_resamples * n_groups).reshape(n_resamples, n_groups)
    return aucs_of_group_counts(labels, scores, codes, counts)


def aucs_of_group_counts(labels, scores, codes, counts) -> np.ndarray:
    """One text-level AUC per row of ``counts`` (resamples x groups; ``codes``: each text's
    group index), every text of group g counted ``counts[r, g]`` times: the Mann-Whitney
    statistic, ties half; NaN for a row that lacks a class.

    With M[g, h] = the (member of g, non-member of h) pairs ordered right (ties half), a
    resample's numerator is sum_gh c_g c_h M[g, h] and its denominator (members)(non-members),
    so the cost is one G x G matrix, not a pass over the texts per resample."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, float)
    codes = np.asarray(codes)
    counts = np.asarray(counts, float)
    n_groups = counts.shape[1]
    pos = labels == 1
    pos_scores, pos_codes = scores[pos], codes[pos]
    pairs = np.zeros((n_groups, n_groups))
    for h in np.unique(codes[~pos]):
        neg = np.sort(scores[(codes == h) & ~pos])
        lo = np.searchsorted(neg, pos_scores, "left")
        hi = np.searchsorted(neg, pos_scores, "right")
        pairs[:, h] = np.bincount(pos_codes, weights=lo + 0.5 * (hi - lo), minlength=n_groups)
    members = np.bincount(codes[pos], minlength=n_groups)
    nonmembers = np.bincount(codes[~pos], minlength=n_groups)
    num = ((counts @ pairs) * counts).sum(axis=1)
    den = (counts @ members) * (counts @ nonmembers)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def group_resampled_auc_interval(labels, scores, groups, n_resamples: int = N_RESAMPLES,
                                 seed: int = SEED) -> list[float]:
    """95% percentile interval of the text-level AUC with whole groups resampled."""
    return percentile_interval(group_resampled_aucs(labels, scores, groups, n_resamples, seed))


def group_block(labels, scores, groups) -> dict:
    """The group-level figures of one baseline's out-of-fold text scores (see the module
    doc), or ``{"auc": None, "why": ...}`` when some group carries both labels."""
    ids, codes, glabel = group_labels(labels, groups)
    mixed = int((glabel < 0).sum())
    if mixed:
        return {"auc": None, "auc_ci95": None, "n_groups": len(ids), "groups_with_both_labels": mixed,
                "why": f"{mixed} group(s) hold members and non-members: membership is not assigned per group"}
    summary = metrics.summarize_groups(glabel, group_means(scores, codes, len(ids)))
    return {
        "auc": summary["auc"],
        "auc_ci95": summary["auc_ci95"],
        "tpr_at_fpr": summary["tpr_at_fpr"],
        "n_groups": len(ids),
        "n_member_groups": summary["n_members"],
        "n_nonmember_groups": summary["n_nonmembers"],
        "aggregation": "mean out-of-fold score of the group's texts",
        "bootstrap": summary["bootstrap"],
    }
