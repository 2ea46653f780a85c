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


def test_tpr_convention_on_a_hand_made_roc_with_ties():
    # non-members 0,1,2,3 ; members 3,4,5,6 -> thresholds: >=7 (0,0), >=6 (0,.25), >=5 (0,.5),
    # >=4 (0,.75), >=3 (.25,1.0): at FPR <= 0.25 the largest TPR is 1.0, at FPR < 0.25 it is 0.75
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0, 1, 2, 3, 3, 4, 5, 6], float)
    assert metrics.tpr_at_fpr(labels, scores, 0.25) == pytest.approx(1.0)
    assert metrics.tpr_at_fpr(labels, scores, 0.5) == pytest.approx(1.0)
    assert metrics.tpr_at_fpr(labels, scores, 0.2) is None  # 0.2 * 4 < 1: unresolvable
    summary = metrics.summarize(labels, scores, n_resamples=50)
    assert "largest TPR" in summary["tpr_convention"]
    assert summary["tpr_at_fpr"]["0.01"] == {"value": None, "ci95": None, "resolvable": False}


def test_bootstrap_interval_covers_the_true_auc_at_least_90_percent():
    """Known separation: members ~ N(d, 1), non-members ~ N(0, 1): true AUC = Phi(d / sqrt 2)."""
    from scipy.stats import norm

    d, n, trials = 1.0, 100, 100
    true_auc = norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(42)
    covered = 0
    for trial in range(trials):
        labels = np.array([1] * n + [0] * n)
        scores = np.concatenate([rng.normal(d, 1, n), rng.normal(0, 1, n)])
        lo, hi = metrics.auc_interval(labels, scores, n_resamples=1000, seed=trial)
        covered += lo <= true_auc <= hi
    assert covered >= 90, covered


def test_paired_bootstrap_difference():
    rng = np.random.default_rng(3)
    labels = np.array([1] * 150 + [0] * 150)
    base = rng.normal(size=300)
    strong = base + 1.5 * labels
    weak = base + 0.3 * labels + rng.normal(scale=0.5, size=300)
    out = metrics.paired_auc_difference(labels, strong, weak)
    assert out["auc_difference"] == pytest.approx(metrics.auc(labels, strong) - metrics.auc(labels, weak))
    lo, hi = out["ci95"]
    assert 0 < lo < out["auc_difference"] < hi and out["p_value"] < 0.01
    same = metrics.paired_auc_difference(labels, strong, strong)
    assert same["auc_difference"] == 0 and same["ci95"] == [0.0, 0.0] and same["p_value"] == 1.0
    # swapping the scorers flips the sign and the interval
    flipped = metrics.paired_auc_difference(labels, weak, strong)
    assert flipped["ci95"] == pytest.approx([-hi, -lo])


def test_excess_over_blind_baseline():
    labels = np.array([1] * 20 + [0] * 20)
    scores = np.arange(40)[::-1].astype(float)  # perfect
    out = metrics.summarize(labels, scores, n_resamples=20, blind_auc=0.75)
    assert out["best_blind_auc"] == 0.75 and out["excess_over_blind"] == pytest.approx(0.25)
    assert "excess_over_blind" not in metrics.summarize(labels, scores, n_resamples=20)


@pytest.mark.parametrize("seed", range(20))
def test_tpr_at_fpr_equals_the_full_roc_from_sklearn(seed):
    """Against every ROC point (drop_intermediate=False), ties included, several budgets."""
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 400))
    labels = rng.integers(0, 2, n)
    scores = np.round(rng.normal(size=n) + labels, int(rng.integers(0, 3)))
    for alpha in (0.5, 0.1, 0.05, 0.01):
        if alpha * (labels == 0).sum() < 1:
            continue
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        assert metrics.tpr_at_fpr(labels, scores, alpha) == pytest.approx(tpr[fpr <= alpha].max())


def test_tpr_at_fpr_keeps_collinear_roc_points():
    # Member/non-member pairs tied at 10, 9 and 8 put ROC points on a
    # straight line; sklearn's default drop_intermediate removes some, such as (0.2, 0.2), which
    # is the answer at FPR <= 20%.
    from sklearn.metrics import roc_curve

    labels = np.array([1, 0, 1, 0, 1, 0] + [1] * 7 + [0] * 7)
    scores = np.array([10, 10, 9, 9, 8, 8] + [5] * 7 + [0] * 7, float)
    fpr, tpr, _ = roc_curve(labels, scores)  # default: intermediate points dropped
    assert tpr[fpr <= 0.2].max() < 0.2  # the point (0.2, 0.2) was dropped
    assert metrics.tpr_at_fpr(labels, scores, 0.2) == pytest.approx(0.2)


def test_vectorized_tpr_rows_equal_the_full_roc_on_every_bootstrap_resample():
    from sklearn.metrics import roc_curve

    from benchmark.metrics.bootstrap import stratified_indices
    from benchmark.metrics.roc import tpr_rows

    def full_roc_tpr(y, s, alpha):
        fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
        return tpr[fpr <= alpha].max()

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + labels, 1)  # ties
    idx = stratified_indices(labels, 50, 0)
    for alpha in (0.1, 0.01):
        rows = tpr_rows(labels[idx], scores[idx], alpha)
        expected = [full_roc_tpr(labels[r], scores[r], alpha) for r in idx]
        np.testing.assert_allclose(rows, expected)


def test_holm_adjustment_by_hand():
    from benchmark.metrics import holm

    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([0.0, 0.0, 0.2]) == [0.0, 0.0, 0.2]
    assert holm([]) == [] and holm([0.3]) == [0.3]
    p = np.random.default_rng(0).uniform(size=10)
    adjusted = np.asarray(holm(p))
    assert (adjusted >= p).all() and (adjusted <= np.minimum(1, 10 * p)).all()  # between raw and Bonferroni


def test_roc_curve_and_ranks_are_exactly_sklearns_and_scipys():
    """The ROC points and the average ranks behind the AUC are computed with numpy alone (a warm
    run imports neither scikit-learn nor scipy); they must equal the libraries' to the bit, ties
    and all, or every published ROC and recomputed AUC would move."""
    from scipy.stats import rankdata
    from sklearn.metrics import roc_curve

    from benchmark.metrics.roc import average_ranks, roc_points

    rng = np.random.default_rng(0)
    for trial in range(600):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        y[0], y[-1] = 0, 1
        s = rng.integers(0, int(rng.integers(1, 12)), n).astype(float) if trial % 2 else rng.normal(size=n)
        fpr, tpr, _ = roc_curve(y, s)
        got = roc_points(y, s)
        assert got["fpr"] == fpr.tolist() and got["tpr"] == tpr.tolist(), trial
        m = rng.integers(0, 5, (4, n)).astype(float)
        assert np.array_equal(average_ranks(m), rankdata(m, axis=1)), trial


def test_resampled_aucs_equal_ranking_every_resample_bit_for_bit():
    """The bootstrap's AUCs from draw counts (scores sorted once) are exactly those of ranking
    each resample: continuous scores, few distinct values, rounded ties, all tied."""
    from benchmark.metrics.bootstrap import stratified_indices
    from benchmark.metrics.roc import auc_rows, resampled_aucs

    rng = np.random.default_rng(7)
    for case in range(160):
        n = int(rng.integers(2, 250))
        labels = rng.integers(0, 2, n)
        labels[: 2] = [0, 1]
        scores = [rng.normal(size=n), rng.integers(0, 4, n).astype(float), np.round(rng.normal(size=n), 1),
                  np.full(n, 2.5)][case % 4]
        idx = stratified_indices(labels, int(rng.integers(1, 120)), case)
        expected = auc_rows(labels[idx], scores[idx])
        assert np.array_equal(resampled_aucs(labels, scores, idx), expected)
    # and a hand-made case: members 3, 2 (drawn twice), non-members 2, 1
    labels, scores = np.array([1, 1, 0, 0]), np.array([3.0, 2.0, 2.0, 1.0])
    idx = np.array([[0, 1, 2, 3], [1, 1, 2, 3]])
    assert resampled_aucs(labels, scores, idx).tolist() == [(1 + 0.5 + 1 + 1) / 4, (0.5 + 1 + 0.5 + 1) / 4]
