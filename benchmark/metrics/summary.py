"""The figures of a result record: AUC and TPR at each FPR budget, with their intervals."""

from __future__ import annotations

import numpy as np

from .bootstrap import N_RESAMPLES, SEED, auc_interval, tpr_interval
from .roc import TPR_CONVENTION, auc, resolvable, tpr_at_fpr

FPR_BUDGETS = (0.1, 0.01, 0.001)


def summarize(
    labels, scores, *, n_resamples: int = N_RESAMPLES, seed: int = SEED, blind_auc: float | None = None
) -> dict:
    """AUC and TPR at each FPR budget, with 95% stratified-bootstrap intervals; with
    ``blind_auc`` (the split's best blind baseline) also ``excess_over_blind`` = AUC - blind."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=float)
    if len(np.unique(labels)) != 2:
        raise ValueError("metrics need both members and non-members")
    n_neg = int((labels == 0).sum())
    tpr = {}
    for alpha in FPR_BUDGETS:
        ok = resolvable(alpha, n_neg)
        tpr[str(alpha)] = {
            "value": tpr_at_fpr(labels, scores, alpha) if ok else None,
            "ci95": tpr_interval(labels, scores, alpha, n_resamples, seed) if ok else None,
            "resolvable": ok,
        }
    value = auc(labels, scores)
    out = {
        "auc": value,
        "auc_ci95": auc_interval(labels, scores, n_resamples, seed),
        "tpr_at_fpr": tpr,
        "tpr_convention": TPR_CONVENTION,
        "bootstrap": {"resamples": n_resamples, "seed": seed, "stratified": True},
        "n_members": int(labels.sum()),
        "n_nonmembers": n_neg,
    }
    if blind_auc is not None:
        out["best_blind_auc"] = float(blind_auc)
        out["excess_over_blind"] = value - float(blind_auc)
    return out
