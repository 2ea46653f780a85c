"""The Infilling score: per-sample scores equal a transcription of the authors' WikiMIA script
(``calculateInfillPerplexity`` and its Min-K%-style aggregation) on a tiny model, for several
settings; the ratio by hand; batch invariance; the forward tokens it costs; orientation on the
demo target."""

from __future__ import annotations

import numpy as np
import pytest

from attack_helpers import inputs_for, texts, tiny_target
from benchmark import attacks
from benchmark.attacks.infilling import infill_ratios

TEXTS = texts(5, seed=31, lo=6, hi=16)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    return tiny_target(tmp_path_factory.mktemp("infill-model"), TEXTS + texts(30, seed=32))


def _reference_ratios(model, tokenizer, text: str, future: int) -> list[float]:
    """The authors' per-position ratios, written out: mu and the one-pass variance of log p at
    every position; for each position whose token is not the most likely one, the text with that
    token replaced by the most likely one is run whole, and the ratio of z-scores is summed over
    the next ``future`` tokens with position i's statistics (and the replaced text's variance
    taken around the original mean), as the script does. In float64: the script's fp32 one-pass
    variance loses about three digits on this random model's flat distributions."""
    import torch

    ids = torch.tensor(tokenizer.encode(text)).unsqueeze(0)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.double()
    probs, logp = logits.softmax(-1), logits.log_softmax(-1)
    mu = (probs[0] * logp[0]).sum(-1)
    var = (probs[0] * logp[0].square()).sum(-1) - mu.square()
    n, out = ids.shape[-1], []
    for i in range(n - 1):
        best = int(torch.argmax(probs[0, i]))
        actual = int(ids[0, i + 1])
        if actual == best:
            out.append(0.0)
            continue
        alt = ids.clone()
        alt[0, i + 1] = best
        with torch.no_grad():
            a_logits = model(input_ids=alt).logits.double()
        a_probs, a_logp = a_logits.softmax(-1), a_logits.log_softmax(-1)
        a_mu = (a_probs[0] * a_logp[0]).sum(-1)
        a_var = (a_probs[0] * a_logp[0].square()).sum(-1) - mu.square()
        r = (logp[0, i, actual] - mu[i]) / var[i].sqrt() - (a_logp[0, i, best] - a_mu[i]) / a_var[i].sqrt()
        for j in range(i, min(i + future, n - 3)):
            nxt = int(ids[0, j + 2])
            r = r + (logp[0, j + 1, nxt] - mu[i]) / var[i].sqrt() - (a_logp[0, j + 1, nxt] - a_mu[i]) / a_var[i].sqrt()
        out.append(r.item())
    return out


def _reference_score(ratios, k: float) -> float:
    values = np.nan_to_num(ratios)
    m = int(len(values) * k)
    return float(np.mean(np.sort(values)[:m])) if m else float("nan")


@pytest.mark.parametrize("k, future", [(0.2, 5), (0.5, 0), (1.0, 3), (0.3, 20)])
def test_infilling_equals_the_authors_computation(target, k, future):
    ours = attacks.get_scorer("infilling", k=k, future_tokens=future).score(
        inputs_for(target, TEXTS, ("features", "logprobs")))
    expected = [_reference_score(_reference_ratios(target.model, target.tokenizer, t, future), k) for t in TEXTS]
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


def test_infill_ratio_by_hand():
    lp, mu, var = np.array([-1.0, -2.0, -0.5]), np.array([-3.0, -2.5, -1.5]), np.array([4.0, 1.0, 1.0])
    # position 0 swapped: on x', l'_0(o) = -0.2, mu' = -3.0, E'[l'^2] = 13 -> v' = 13 - 9 = 4, sd' = 2
    # future (T = 4 tokens, j in range(0, min(0 + 1, 1))): l_1 = -2.0 vs l'_1 = -2.4, both over position 0's stats
    alt = [(np.array([-0.2, -2.4, -0.7]), np.array([-3.0, -2.6, -1.4]), np.array([13.0, 7.0, 3.0])), None, None]
    r = infill_ratios(lp, mu, var, alt, future=1)
    expected = ((-1.0 + 3.0) / 2 - (-0.2 + 3.0) / 2) + ((-2.0 + 3.0) / 2 - (-2.4 + 3.0) / 2)
    np.testing.assert_allclose(r, [expected, 0.0, 0.0])
    # a negative v' gives NaN in the script, then 0
    alt[0] = (alt[0][0], alt[0][1], np.array([5.0, 7.0, 3.0]))
    assert infill_ratios(lp, mu, var, alt, future=1)[0] == 0.0


def test_infilling_does_not_move_with_the_batch_and_meters_its_rows(target):
    scorer = attacks.get_scorer("infilling")
    wide = inputs_for(target, TEXTS, ("features", "logprobs"))
    narrow = inputs_for(target, TEXTS, ("features", "logprobs"))
    narrow.access.batch_tokens = 16
    a, b = scorer.score(wide), scorer.score(narrow)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    rows = wide.access.tokenize(TEXTS)
    alt_rows = scorer.details["infill_forward_rows"]
    usage = wide.access.usage
    # argmax pass over every text, then the replaced rows (each at most i + L + 2 tokens)
    assert usage["target_forward_texts"] == len(TEXTS) + alt_rows
    assert usage["target_forward_tokens"] >= sum(len(r) for r in rows) + 2 * alt_rows


def test_infilling_declares_its_paper():
    cls = attacks.scorer_class("infilling")
    assert (cls.title, cls.method, cls.default_set) == ("Infilling Score", "infilling", "model")
    assert "9QPH1YQCMn" in cls.citation and "ICLR 2025" in cls.citation
    assert "calculateInfillPerplexity" in attacks.infilling.__doc__


@pytest.mark.slow
def test_infilling_is_oriented_on_the_demo_target():
    """On the 40 shortest demo texts of each class (each position of a text costs a forward pass)."""
    from sklearn.metrics import roc_auc_score

    from attack_helpers import demo_subset

    labels, inputs = demo_subset(40, ("features", "logprobs"))
    assert roc_auc_score(labels, attacks.get_scorer("infilling").score(inputs)) > 0.5
