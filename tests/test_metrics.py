"""Metrics against scikit-learn and against hand-made ROCs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmark import metrics


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + 0.5 * labels, 1)  # many ties
    assert metrics.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_tpr_at_fpr_hand_made_roc():
    # non-members score 0..9, members score 5.5..14.5: at FPR <= 10% (1 of 10) the threshold
    # sits above 8, catching members scoring > 8: 6.5..14.5 minus those <= 8 -> 7 of 10.
    labels = np.array([0] * 10 + [1] * 10)
    scores = np.concatenate([np.arange(10), np.arange(10) + 5.5])
    assert metrics.tpr_at_fpr(labels, scores, 0.1) == pytest.approx(0.7)
    assert metrics.tpr_at_fpr(labels, scores, 0.0999) is None  # 0.0999 * 10 < 1: unresolvable


def test_summary_marks_unresolvable_budgets_and_is_seeded():
    rng = np.random.default_rng(1)
    labels = np.array([1] * 50 + [0] * 50)
    scores = rng.normal(size=100) + labels
    a = metrics.summarize(labels, scores)
    b = metrics.summarize(labels, scores)
    assert a == b
    assert a["tpr_at_fpr"]["0.001"]["resolvable"] is False
    assert a["tpr_at_fpr"]["0.001"]["value"] is None
    assert a["tpr_at_fpr"]["0.1"]["resolvable"] is True
    lo, hi = a["auc_ci95"]
    assert lo < a["auc"] < hi
