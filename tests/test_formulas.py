"""Formulas against values computed by hand from a tiny model's logits; batch invariance."""

from __future__ import annotations

import math
import zlib as _zlib

import numpy as np
import pytest
import torch

from benchmark import attacks, features

SEQS = [[5, 17, 3, 42, 8, 8, 1], [9, 2, 60]]  # a hand-built two-sample example


def _by_hand(model, ids):
    """Per-token log p(x_t|x_<t), mu_t and sigma_t by explicit loops over one sequence."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    lp, mu, sd = [], [], []
    for t in range(1, len(ids)):
        row = logits[t - 1]
        logz = math.log(sum(math.exp(v) for v in row.tolist()))
        logp = [v - logz for v in row.tolist()]
        p = [math.exp(v) for v in logp]
        m = sum(pi * li for pi, li in zip(p, logp))
        var = sum(pi * (li - m) ** 2 for pi, li in zip(p, logp))
        lp.append(logp[ids[t]])
        mu.append(m)
        sd.append(math.sqrt(var))
    return np.array(lp), np.array(mu), np.array(sd)


def _inputs(stats, texts=None):
    n = len(stats)
    return attacks.ScoringInput(uids=[str(i) for i in range(n)], texts=texts or ["x"] * n, features=stats)


def test_loss_and_min_k_equal_hand_computed(tiny_neox):
    stats = features.compute(tiny_neox, SEQS, pad_id=0)
    inp = _inputs(stats)
    loss = attacks.get_scorer("loss").score(inp)
    mink = attacks.get_scorer("min_k", k=0.5).score(inp)
    mkpp = attacks.get_scorer("min_k_plus_plus", k=0.5).score(inp)
    for i, ids in enumerate(SEQS):
        lp, mu, sd = _by_hand(tiny_neox, ids)
        assert loss[i] == pytest.approx(lp.mean(), abs=1e-5)
        n = max(int(math.floor(0.5 * len(lp))), 1)
        assert mink[i] == pytest.approx(np.sort(lp)[:n].mean(), abs=1e-5)
        z = (lp - mu) / sd
        assert mkpp[i] == pytest.approx(np.sort(z)[:n].mean(), abs=1e-4)
        s = stats.sample(i)
        np.testing.assert_allclose(s["mu"], mu, atol=1e-5)
        np.testing.assert_allclose(s["sigma"], sd, atol=1e-5)
        np.testing.assert_allclose(s["entropy"], -mu, atol=1e-5)


def test_min_k_takes_at_least_one_token(tiny_neox):
    stats = features.compute(tiny_neox, [[1, 2]], pad_id=0)  # one scored token
    inp = _inputs(stats)
    assert attacks.get_scorer("min_k", k=0.2).score(inp)[0] == pytest.approx(stats.sample(0)["logprob"][0])


def test_zlib_divides_mean_logprob_by_compressed_length(tiny_neox):
    stats = features.compute(tiny_neox, SEQS, pad_id=0)
    texts = ["aaaa aaaa aaaa", "a quick brown fox"]
    z = attacks.get_scorer("zlib").score(_inputs(stats, texts))
    for i, text in enumerate(texts):
        expected = stats.sample(i)["logprob"].astype(float).mean() / len(_zlib.compress(text.encode()))
        assert z[i] == pytest.approx(expected, rel=1e-6)


def test_scores_same_at_batch_size_1_and_8(tiny_neox):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 97, size=int(n)).tolist() for n in rng.integers(2, 60, size=8)]
    longest = max(len(s) for s in seqs)
    one = features.compute(tiny_neox, seqs, pad_id=0, batch_tokens=longest)  # one row per batch
    eight = features.compute(tiny_neox, seqs, pad_id=0, batch_tokens=8 * longest)  # all together
    for name in ("loss", "min_k", "min_k_plus_plus"):
        a = attacks.get_scorer(name).score(_inputs(one))
        b = attacks.get_scorer(name).score(_inputs(eight))
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_plan_batches_respects_budget_and_sorts_longest_first():
    lengths = [5, 50, 20, 20, 3, 49]
    batches = features.plan_batches(lengths, batch_tokens=100)
    assert batches[0][0] == 1
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 100 or len(b) == 1
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_text_with_one_token_yields_nan_not_a_crash(tiny_neox):
    stats = features.compute(tiny_neox, [[4], [1, 2, 3]], pad_id=0)
    loss = attacks.get_scorer("loss").score(_inputs(stats))
    assert math.isnan(loss[0]) and math.isfinite(loss[1])
