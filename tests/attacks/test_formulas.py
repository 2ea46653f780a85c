"""Formulas against values computed by hand from a tiny model's logits; batch invariance."""

from __future__ import annotations

import math
import zlib as _zlib

import numpy as np
import pytest
import torch

from benchmark import attacks, features
from benchmark.evaluate import MeteredModelAccess

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


# --- every other formula, against loops over a tiny model's logits -------------------------

TEXTS = [
    "The Quick brown Fox jumps over the lazy dog again and again.",
    "Python Lists are mutable sequences; Tuples are not.",
    "A",
    "Membership inference asks whether a text was in the training set.",
]
POOL = ["Dictionaries map hashable keys to values.", "Generators yield values lazily, one at a time."]


@pytest.fixture(scope="module")
def tiny_target(tmp_path_factory):
    """A LoadedTarget-like bundle: a BPE tokenizer trained on a few texts, random GPT-NeoX."""
    from types import SimpleNamespace

    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from benchmark.targets.demo import train_tokenizer

    tok = train_tokenizer(TEXTS + POOL + [t.lower() for t in TEXTS] * 3, tmp_path_factory.mktemp("tok"))

    def make(seed):
        torch.manual_seed(seed)
        cfg = GPTNeoXConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=128, rotary_pct=0.25)
        model = GPTNeoXForCausalLM(cfg).eval()
        return SimpleNamespace(id=f"tiny-{seed}", model=model, tokenizer=tok, device="cpu", max_length=128,
                               tokenizer_hash=f"tiny-tok-{seed}")

    return make(0), make(1)


def _ids(target, text):
    return target.tokenizer(text)["input_ids"][: target.max_length]


def _mean_lp(target, text):
    ids = _ids(target, text)
    return _by_hand(target.model, ids)[0].mean() if len(ids) > 1 else float("nan")


def _scoring_input(target, texts, granted, reference=None, **extra):
    ids = [_ids(target, t) for t in texts]
    stats = features.compute(target.model, ids, pad_id=0)
    access = MeteredModelAccess(target, granted=granted, reference=reference)
    return attacks.ScoringInput(uids=[str(i) for i in range(len(texts))], texts=texts, features=stats,
                                access=access, **extra)


def test_lowercase_equals_hand_computed(tiny_target):
    t, _ = tiny_target
    out = attacks.get_scorer("lowercase").score(_scoring_input(t, TEXTS, ("features", "logprobs")))
    for i, text in enumerate(TEXTS):
        expected = _mean_lp(t, text) - _mean_lp(t, text.lower())
        if math.isnan(expected):
            assert math.isnan(out[i])
        else:
            assert out[i] == pytest.approx(expected, abs=1e-5)


def test_reference_equals_hand_computed(tiny_target):
    t, ref = tiny_target
    out = attacks.get_scorer("reference").score(_scoring_input(t, TEXTS, ("features", "reference"), reference=ref))
    for i, text in enumerate(TEXTS):
        expected = _mean_lp(t, text) - _mean_lp(ref, text)
        assert (math.isnan(out[i]) and math.isnan(expected)) or out[i] == pytest.approx(expected, abs=1e-5)


def test_recall_equals_hand_computed(tiny_target):
    t, _ = tiny_target
    scorer = attacks.get_scorer("recall", shots=1, seed=3)
    out = scorer.score(_scoring_input(t, TEXTS, ("features", "logprobs"), pool=POOL))
    prefix = scorer.prefix(POOL)
    assert prefix.strip() in POOL
    for i, text in enumerate(TEXTS):
        ids = _ids(t, text)
        if len(ids) < 2:
            assert math.isnan(out[i])
            continue
        full = _ids(t, prefix) + t.tokenizer(text, add_special_tokens=False)["input_ids"]
        cond = _by_hand(t.model, full)[0][-(len(ids) - 1):].mean()  # the same tokens of x
        assert out[i] == pytest.approx(cond / _mean_lp(t, text), abs=1e-5)


def test_recall_defaults_to_mimirs_one_shot():
    """MIMIR's configs/recall.json: recall_num_shots 1 (membench published 2 before)."""
    scorer = attacks.get_scorer("recall")
    assert scorer.shots == 1 and scorer.prefix(POOL).strip() in POOL  # one pool text, not two joined
    assert attacks.canonical_params(attacks.scorer_class("recall"), {"shots": 1}) == {}


def test_recall_refuses_a_pool_overlapping_the_split(tiny_target):
    from benchmark.errors import MembenchError

    t, _ = tiny_target
    with pytest.raises(MembenchError, match="shares 1 text"):
        attacks.get_scorer("recall").score(_scoring_input(t, TEXTS, ("features", "logprobs"), pool=POOL + [TEXTS[0]]))


def _dcpdd_by_hand(scored_ids, lp, counts, a):
    total, vocab = sum(counts), len(counts)
    seen, terms = set(), []
    for pos, tok_id in enumerate(scored_ids):
        if tok_id in seen:
            continue
        seen.add(tok_id)
        f = (counts[tok_id] + 1) / (total + vocab)
        terms.append(min(math.exp(lp[pos]) * math.log(1 / f), a))
    return sum(terms) / len(terms) if terms else float("nan")


def _pool_counts(t):
    counts = [0] * len(t.tokenizer)
    for p in POOL:
        for tok_id in _ids(t, p):
            counts[tok_id] += 1
    return counts


def test_dcpdd_scores_the_first_token_after_eos_as_mimir_does(tiny_target):
    t, _ = tiny_target
    a = 0.5  # large enough that the clip binds only sometimes
    scorer = attacks.get_scorer("dc_pdd", a=a, frequency="pool")
    out = scorer.score(_scoring_input(t, TEXTS, ("features", "logprobs"), pool=POOL))
    counts = _pool_counts(t)
    eos = t.tokenizer.eos_token_id
    assert eos is not None and not t.tokenizer("a b")["input_ids"][0] == eos  # no BOS of its own
    for i, text in enumerate(TEXTS):
        ids = _ids(t, text)
        row = [eos] + ids  # MIMIR: tokens = cat([eos], tokenizer(document)); every text token scored
        lp = _by_hand(t.model, row)[0]
        assert len(lp) == len(ids)  # token 1 is scored ("A", one token, now has a score too)
        assert out[i] == pytest.approx(_dcpdd_by_hand(ids, lp, counts, a), abs=1e-6)
    assert "EOS" in scorer.details["first_token"] and scorer.details["frequency"]["n_texts"] == len(POOL)


def test_dcpdd_without_the_first_token_equals_hand_computed(tiny_target):
    t, _ = tiny_target
    a = 0.5
    out = attacks.get_scorer("dc_pdd", a=a, frequency="pool", first_token=False).score(
        _scoring_input(t, TEXTS, ("features", "logprobs"), pool=POOL))
    counts = _pool_counts(t)
    for i, text in enumerate(TEXTS):
        ids = _ids(t, text)
        if len(ids) < 2:
            assert math.isnan(out[i])
            continue
        lp = _by_hand(t.model, ids)[0]
        assert out[i] == pytest.approx(_dcpdd_by_hand(ids[1:], lp, counts, a), abs=1e-6)


def mimir_gradnorm(model, ids, p=float("inf")):
    """MIMIR's GradNormAttack._attack (mimir/attacks/gradnorm.py), transcribed: loss = -mean of
    the token log-probabilities, one backward pass, the mean over parameters with a gradient of
    each gradient's p-norm, negated."""
    model.zero_grad()
    x = torch.tensor([ids])
    with torch.enable_grad():
        logits = model(input_ids=x).logits[0, :-1]
        all_prob = torch.log_softmax(logits, -1).gather(-1, x[0, 1:].unsqueeze(-1)).squeeze(-1)
        loss = -torch.mean(all_prob)
        loss.backward()
    grad_norms = []
    for param in model.parameters():
        if param.grad is not None:
            grad_norms.append(param.grad.detach().norm(p))
    grad_norm = torch.stack(grad_norms).mean()
    model.zero_grad()
    return -grad_norm.cpu().numpy()


def test_gradnorm_equals_mimir_on_a_tiny_model(tiny_target):
    t, _ = tiny_target
    out = attacks.get_scorer("gradnorm").score(_scoring_input(t, TEXTS, ("gradients",)))
    l2 = attacks.get_scorer("gradnorm", reduction="mean-tensor-l2").score(_scoring_input(t, TEXTS, ("gradients",)))
    for p in t.model.parameters():
        p.requires_grad_(True)
    for i, text in enumerate(TEXTS):
        ids = _ids(t, text)
        if len(ids) < 2:
            assert math.isnan(out[i])
            continue
        assert out[i] == pytest.approx(float(mimir_gradnorm(t.model, ids)), rel=1e-4)
        assert l2[i] == pytest.approx(float(mimir_gradnorm(t.model, ids, p=2)), rel=1e-4)
    assert attacks.canonical_params(attacks.scorer_class("gradnorm"), {"reduction": "mean-tensor-linf"}) == {}


def test_gradnorm_global_l2_is_a_named_option(tiny_target):
    t, _ = tiny_target
    out = attacks.get_scorer("gradnorm", reduction="global-l2").score(_scoring_input(t, TEXTS, ("gradients",)))
    params = list(t.model.parameters())
    for i, text in enumerate(TEXTS):
        ids = _ids(t, text)
        if len(ids) < 2:
            assert math.isnan(out[i])
            continue
        x = torch.tensor([ids])
        with torch.enable_grad():
            logits = t.model(input_ids=x).logits[0, :-1].double()
            logp = logits - torch.logsumexp(logits, -1, keepdim=True)
            loss = -torch.stack([logp[j, ids[j + 1]] for j in range(len(ids) - 1)]).mean()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        norm = math.sqrt(sum(float(g.double().square().sum()) for g in grads if g is not None))
        assert out[i] == pytest.approx(-norm, rel=1e-4)
    assert all(p.grad is None for p in params)


def test_neighborhood_with_stored_neighbours_equals_hand_computed(tiny_target):
    t, _ = tiny_target
    texts = [TEXTS[0], TEXTS[1]]
    stored = {"0": [TEXTS[1], TEXTS[3], POOL[0]], "1": [POOL[1], TEXTS[0]]}
    scorer = attacks.get_scorer("neighborhood", n_neighbors=2)
    out = scorer.score(_scoring_input(t, texts, ("features", "logprobs"), neighbors=stored))
    assert scorer.details["neighbour_source"] == "stored"
    for i, uid in enumerate(["0", "1"]):
        neigh = np.mean([_mean_lp(t, n) for n in stored[uid][:2]])
        assert out[i] == pytest.approx(_mean_lp(t, texts[i]) - neigh, abs=1e-5)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_scores_same_at_batch_size_1_and_16(tiny_neox, padding_side):
    rng = np.random.default_rng(1)
    seqs = [rng.integers(1, 97, size=int(n)).tolist() for n in rng.integers(2, 80, size=16)]
    longest = max(len(s) for s in seqs)
    one = features.compute(tiny_neox, seqs, pad_id=0, batch_tokens=longest, padding_side=padding_side)
    sixteen = features.compute(tiny_neox, seqs, pad_id=0, batch_tokens=16 * longest, padding_side=padding_side)
    for name in ("loss", "min_k", "min_k_plus_plus"):
        a = attacks.get_scorer(name).score(_inputs(one))
        b = attacks.get_scorer(name).score(_inputs(sixteen))
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    # and against unpadded loops by hand
    for i, ids in enumerate(seqs[:4]):
        lp, mu, sd = _by_hand(tiny_neox, ids)
        np.testing.assert_allclose(sixteen.sample(i)["logprob"], lp, atol=1e-5)
        np.testing.assert_allclose(sixteen.sample(i)["sigma"], sd, atol=1e-5)
