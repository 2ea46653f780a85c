"""CAMIA: every signal equals a transcription of the authors' feature code
(github.com/changhongyan123/context_aware_mia ``util_features.py``, ``run_ours_train_lr.py``) on
a tiny model, the p-values and their combinations equal scipy's as the authors call it, the
pieces by hand, a record with its calibration, and orientation on the demo target."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from attack_helpers import inputs_for, run_small, small_env, texts, tiny_target
from benchmark import attacks
from benchmark.attacks.camia import (
    find_sublist_indices,
    lempel_ziv_complexity,
    percentile_rank,
    repeated,
    text_signals,
)

TEXTS = texts(10, seed=41, lo=8, hi=20)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    return tiny_target(tmp_path_factory.mktemp("camia-model"), TEXTS + texts(30, seed=42))


# ---- the reference, written out ------------------------------------------------------------------
def _token_logprobs(model, tokenizer, text):
    """Each token's log-probability after the ones before it, and the tokens (the ids less the first)."""
    import torch

    ids = torch.tensor([tokenizer.encode(text)])
    with torch.no_grad():
        logp = model(input_ids=ids).logits.float().log_softmax(-1)[0, :-1]
    labels = ids[0, 1:]
    return logp.gather(1, labels[:, None])[:, 0].numpy().astype(np.float64), labels.numpy()


def _lz(x, n_bins):
    x = np.digitize(np.asarray(x), bins=np.linspace(min(x), 0, 100), right=True)
    seq = np.searchsorted(np.linspace(np.min(x), np.max(x), n_bins + 1)[1:], x, side="left")
    words, start, width = set(), 0, 1
    while start + width <= len(seq):
        w = tuple(seq[start:start + width])
        if w in words:
            width += 1
        else:
            words.add(w)
            start, width = start + width, 1
    return len(words) / len(seq)


def _apen(x, m, r):
    x = np.asarray(x)
    n, r = x.size, r * np.std(x)
    if n <= m + 1:
        return 0

    def phi(k):
        emb = np.array([x[i:i + k] for i in range(n - k + 1)])
        close = np.max(np.abs(emb[:, None] - emb[None, :]), axis=2) <= r
        return np.log(close.sum(axis=0) / (n - k + 1)).sum() / (n - k + 1.0)

    return abs(phi(m) - phi(m + 1))


def _features(x, labels):
    """One trajectory's signals in the authors' order (``collect_all_features`` less ``find_t``)."""
    loss = [np.mean(x[0:e]) for e in (-1, 200, 300)]
    ppl = [np.exp(-np.mean(x[0:e])) for e in (-1, 200, 300)]
    div = [len(set(labels[0:e])) / len(labels[0:e]) for e in (-1, 200, 300)]
    return {"loss": loss, "ppl": ppl,
            "count_above": [np.mean(np.array(x[0:200]) >= h) for h in (-1, -2, -3)],
            "lz_complexity": [_lz(x[0:200], b) for b in (3, 4, 5)],
            "token_diversity": div,
            "count_mean": [np.where(x[0:e] > np.mean(x[0:e]))[0].size for e in (-1, 200, 300)],
            "calibrated_loss": list(np.array(loss) / np.array(div)),
            "calibrated_ppl": list(np.array(ppl) / np.array(div))}


def _reference_signals(model, tokenizer, text):
    x, labels = _token_logprobs(model, tokenizer, text)
    x_rep, labels_rep = _token_logprobs(model, tokenizer, text + (" " + text) * 5)
    target = labels[2:]
    starts = [i for i in range(len(labels_rep) - len(target) + 1)
              if np.array_equal(labels_rep[i:i + len(target)], target)]
    assert len(starts) >= 2  # the whole repetition fits the tiny context: no shortening of the pattern
    copies = [x_rep[s - 1:s + len(target) - 1] for s in starts[:-2]]
    single = _features(x, list(labels))
    copied = [_features(c, list(labels)) for c in copies[:3]]
    out = {}
    for key in single:
        out[key] = single[key]
        if key != "token_diversity":
            out["overall_diff_1_" + key] = list(np.array(copied[0][key]) - np.array(copied[1][key]))
            out["overall_diff_2_" + key] = list(np.array(copied[0][key]) - np.array(copied[2][key]))
    out["slope"] = [np.polyfit(range(len(x_rep[0:e])), x_rep[0:e], 1)[0] for e in (600, 800, 1000)]
    out["approximate_entropy"] = [_apen(x_rep[:e], 8, 0.8) for e in (600, 800, 1000)]
    out["count_above_pre"] = [np.mean(np.array([x[t] for t in range(1, min(c, len(x)))])
                                      > np.array([np.mean(x[:t]) for t in range(1, min(c, len(x)))]))
                              for c in (1000000000, 200, 300)]
    return out


# ---- tests ---------------------------------------------------------------------------------------
def test_camia_signals_equal_the_authors(target):
    inputs = inputs_for(target, TEXTS, ("features", "logprobs"))
    rep = inputs.access.logprobs([repeated(t) for t in TEXTS])
    for i, text in enumerate(TEXTS):
        s, r = inputs.features.sample(i), rep.sample(i)
        ours = text_signals(s["logprob"], s["token_id"], r["logprob"], r["token_id"])
        ref = _reference_signals(target.model, target.tokenizer, text)
        assert list(ours) == list(ref)
        for key in ref:
            np.testing.assert_allclose(ours[key], ref[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("combine", ["mean", "pearson", "fisher"])
def test_camia_p_values_and_combination_equal_the_authors(target, combine):
    scorer = attacks.get_scorer("camia", combine=combine)
    cal, rest = TEXTS[:6], TEXTS[6:]
    y = np.array([1, 0, 1, 0, 0, 1])
    scorer.fit(inputs_for(target, cal, ("features", "logprobs", "fit")), attacks.CalibrationLabels(y))
    ours = scorer.score(inputs_for(target, rest, ("features", "logprobs", "fit")))
    # the authors: each group negated when its member mean exceeds its non-member mean (here over
    # the calibration texts), p = percentileofscore(population, value) / 100, then -mean(p) or
    # -combine_pvalues(p clipped to [1e-10, 1 - 1e-10]).pvalue
    sig = {t: _reference_signals(target.model, target.tokenizer, t) for t in TEXTS}
    p_values = []
    for key in sig[TEXTS[0]]:
        cal_vals = np.array([sig[t][key] for t in cal])
        sign = -1.0 if cal_vals[y == 1].mean() > cal_vals[y == 0].mean() else 1.0
        population, values = sign * cal_vals[y == 0], sign * np.array([sig[t][key] for t in rest])
        for j in range(values.shape[1]):
            p_values.append(scipy_stats.percentileofscore(population[:, j], values[:, j]) / 100)
    p_values = np.array(p_values)
    if combine == "mean":
        expected = -p_values.mean(axis=0)
    else:
        clipped = np.clip(p_values, 1e-10, 1 - 1e-10)
        expected = -np.array([scipy_stats.combine_pvalues(clipped[:, k], method=combine).pvalue
                              for k in range(clipped.shape[1])])
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-9)


def test_camia_does_not_move_with_the_batch(target):
    scorer = attacks.get_scorer("camia")
    scorer.fit(inputs_for(target, TEXTS[:6], ("features", "logprobs", "fit")),
               attacks.CalibrationLabels(np.array([1, 0, 1, 0, 0, 1])))
    wide = inputs_for(target, TEXTS[6:], ("features", "logprobs", "fit"))
    narrow = inputs_for(target, TEXTS[6:], ("features", "logprobs", "fit"))
    narrow.access.batch_tokens = 16
    np.testing.assert_allclose(scorer.score(narrow), scorer.score(wide), atol=1e-6, rtol=0)


def test_the_pieces_by_hand():
    # kind "rank": (left + right + (right > left)) / 2n, left = #below, right = #at or below: (1 + 3 + 1) / 8
    got = percentile_rank(np.array([1.0, 2.0, 2.0, 3.0]), np.array([2.0, 0.0, 5.0, math.nan]))
    assert got[:3].tolist() == [0.625, 0.0, 1.0] and math.isnan(got[3])
    for v in (0.5, 1.0, 2.0, 2.5, 4.0):
        assert percentile_rank(np.array([1.0, 2.0, 2.0, 3.0]), np.array([v]))[0] == pytest.approx(
            scipy_stats.percentileofscore([1.0, 2.0, 2.0, 3.0], v) / 100)
    # two levels: -9 -> 0, -0.1 -> 1, so "101101", whose phrases are 1, 0, 11, 01: 4 of 6
    assert lempel_ziv_complexity(np.array([-0.1, -9.0, -0.1, -0.1, -9.0, -0.1]), 2) == pytest.approx(4 / 6)
    assert find_sublist_indices([5, 1, 2, 3, 9, 1, 2, 3, 1, 2, 3], [1, 2, 3]) == [1, 5, 8]
    assert find_sublist_indices([7, 1, 2, 8, 2], [1, 2]) == [1, 2, 4]  # one found: shortened, appended
    assert find_sublist_indices([1, 2, 3], [4, 5]) == []  # the authors' loop would never end here


def test_camia_refuses_to_score_unfitted_and_reads_no_evaluated_label(target):
    from benchmark.errors import MembenchError

    with pytest.raises(MembenchError, match="was not fitted"):
        attacks.get_scorer("camia").score(inputs_for(target, TEXTS[:2], ("features", "logprobs", "fit")))


def test_camia_record_carries_its_calibration_and_cost(tmp_path_factory, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        env = small_env(tmp_path_factory, mp, n=40)
        (record,) = run_small(env, ["camia"], tmp_path / "r", calibration="cal80")
    assert record["evaluation_subset"]["name"] == "cal80"
    assert record["scorer"]["details"]["population"] >= 1
    assert record["provenance"]["usage"]["target_forward_tokens"] > 0


def test_camia_declares_its_paper():
    cls = attacks.scorer_class("camia")
    assert (cls.title, cls.method, cls.default_set) == ("CAMIA", "camia", "fit")
    assert "2409.13745" in cls.citation and "fit" in cls.requires and "camia" in attacks.FIT_SCORERS
    assert "changhongyan123/context_aware_mia" in attacks.camia.__doc__


@pytest.mark.slow
def test_camia_is_oriented_on_the_demo_target(tmp_path_factory):
    from attack_helpers import demo_record

    record = demo_record(tmp_path_factory, "camia", calibration="cal10")
    assert record["metrics"]["auc"] > 0.5, record["metrics"]
