"""Metrics: AUC, TPR at low FPR, bootstrap intervals, paired comparisons, blind excess.

Public face: ``summarize`` (everything a result record needs), ``auc``, ``tpr_at_fpr``,
``auc_interval``, ``paired_auc_difference``, ``holm`` (multiple-comparison correction),
``roc_points``, ``FPR_BUDGETS``, ``TPR_CONVENTION``, ``summarize_groups`` (the same figures over
groups, for group-level records: ``group_level``) and ``auc_by_bins`` (AUC over groups within bins
of a per-group value).
"""

from __future__ import annotations

from .bootstrap import auc_interval, paired_auc_difference
from .group_level import auc_by_bins, summarize_groups
from .multiple import HOLM, holm
from .roc import TPR_CONVENTION, auc, roc_points, tpr_at_fpr
from .summary import FPR_BUDGETS, summarize

__all__ = [
    "FPR_BUDGETS",
    "HOLM",
    "TPR_CONVENTION",
    "auc",
    "auc_interval",
    "holm",
    "paired_auc_difference",
    "roc_points",
    "summarize",
    "summarize_groups",
    "auc_by_bins",
    "tpr_at_fpr",
]
