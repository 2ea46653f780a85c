"""Diagnostics: does a split measure membership at all? (Blind baselines, verdicts.)

Public face: ``diagnose`` (per split, without the model), ``BLIND_SCORER``,
``out_of_fold_scores``.
"""

from __future__ import annotations

from ..metrics import summarize
from .blind import bag_of_words, out_of_fold_scores

BLIND_SCORER = "blind_bow"


def diagnose(texts, labels) -> dict:
    """Blind-baseline figures for one split: out-of-fold scores and their metrics."""
    scores = out_of_fold_scores(texts, labels)
    metrics = summarize(labels, scores)
    return {
        "blind_auc": metrics["auc"],
        "blind_auc_ci95": metrics["auc_ci95"],
        "baselines": {BLIND_SCORER: metrics},
        "scores": scores,
    }


__all__ = ["BLIND_SCORER", "bag_of_words", "diagnose", "out_of_fold_scores"]
