"""SURP: per-sample scores equal a transcription of the public implementation
(computationalprivacy/mia_llms_benchmark ``attacks/surp.py``) on a tiny model, a hand-worked
example, batch-size invariance, and orientation on the demo target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark import attacks, features
from benchmark.attacks.surp import REFERENCE_EMPTY, surp_score

SEQS = [[5, 17, 3, 42, 8, 8, 1, 60, 33, 2, 9, 71, 70, 4, 15, 16], [9, 2, 60, 11, 12], [7] * 3 + [30, 31, 32] * 4]


def _reference(model, seqs, k_percent: int, max_entropy: float) -> np.ndarray:
    """The reference computation, written out: a right-padded batch, token log-probabilities by
    cross-entropy (padding ignored), entropies from softmax, then per row the intersection of
    the int(k/100 * n) lowest log-probabilities with the positions of entropy below the bound,
    averaged; an empty intersection gives NaN, then -100."""
    width = max(map(len, seqs))
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, s in enumerate(seqs):
        ids[r, : len(s)], mask[r, : len(s)] = torch.tensor(s), 1
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits[:, :-1]
    targets = ids[:, 1:].clone()
    targets[mask[:, :-1] == 0] = -100
    logp = -torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                              reduction="none").view_as(targets)
    entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)
    out = []
    for r in range(len(seqs)):
        n = int(mask[r, :-1].sum())
        lowest = set(torch.topk(logp[r], int(k_percent / 100 * n), largest=False).indices.tolist())
        calm = set((entropy[r] < max_entropy).nonzero()[:, 0].tolist())
        chosen = sorted(lowest & calm)
        out.append(logp[r, chosen].mean().item() if chosen else float("nan"))
    return np.nan_to_num(np.asarray(out), nan=-100)


def _inputs(stats):
    return attacks.ScoringInput(uids=[str(i) for i in range(len(stats))], texts=["x"] * len(stats), features=stats)


@pytest.mark.parametrize("k_percent, max_entropy", [(20, 2.0), (50, 4.58), (100, 4.5685), (30, 10.0), (60, 4.5684)])
def test_surp_equals_the_reference_computation(tiny_neox, k_percent, max_entropy):
    """Text by text: run on a padded batch, the reference also scores the first padding position
    of every shorter row (its mask is shifted the wrong way), so its score of a text moves with
    the batch; alone, a text's score is the method's."""
    stats = features.compute(tiny_neox, SEQS, pad_id=0)
    ours = attacks.get_scorer("surp", k=k_percent / 100, max_entropy=max_entropy,
                              empty_score=REFERENCE_EMPTY).score(_inputs(stats))
    expected = [_reference(tiny_neox, [seq], k_percent, max_entropy)[0] for seq in SEQS]
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    if 4.56 < max_entropy < 4.57:  # the bound splits the tokens: some are left out, some are kept
        assert any(score != REFERENCE_EMPTY for score in ours)
    # by default a text with no surprising token scores 0 (nothing surprised the model)
    default = attacks.get_scorer("surp", k=k_percent / 100, max_entropy=max_entropy).score(_inputs(stats))
    np.testing.assert_allclose(default, np.where(ours == REFERENCE_EMPTY, 0.0, ours))


def test_surp_by_hand():
    lp = np.array([-0.1, -5.0, -3.0, -0.5, -4.0, -2.0, -0.2, -6.0, -1.0, -0.3])
    h = np.array([0.5, 1.0, 3.0, 0.2, 1.5, 0.1, 2.5, 2.5, 0.4, 0.3])
    # k = 0.4: the 4 lowest are -6.0 (H 2.5), -5.0 (H 1.0), -4.0 (H 1.5), -3.0 (H 3.0); H < 2: -5.0 and -4.0
    assert surp_score(lp, h, 0.4, 2.0) == pytest.approx(-4.5)
    assert surp_score(lp, h, 0.4, 1.2) == pytest.approx(-5.0)
    assert surp_score(lp, h, 0.4, 0.9) == 0.0  # no low-probability token is also low-entropy: no surprise
    assert surp_score(lp, h, 0.4, 0.9, empty=-100) == -100  # the reference's filler
    assert surp_score(lp[:4], h[:4], 0.2, 2.0) == 0.0  # int(0.2 * 4) = 0 tokens
    # ties go to the earlier token
    assert surp_score(np.array([-1.0, -1.0, 0.0]), np.array([0.1, 5.0, 0.1]), 0.34, 2.0) == pytest.approx(-1.0)


def test_surp_is_higher_for_less_surprising_text():
    h = np.full(10, 0.5)
    seen, unseen = np.full(10, -0.5), np.full(10, -4.0)
    assert surp_score(seen, h, 0.2, 2.0) > surp_score(unseen, h, 0.2, 2.0)
    assert surp_score(seen, np.full(10, 5.0), 0.2, 2.0) > surp_score(unseen, h, 0.2, 2.0)  # never certain, never wrong


def test_surp_does_not_move_with_the_batch(tiny_neox):
    rng = np.random.default_rng(3)
    seqs = [rng.integers(1, 97, size=int(rng.integers(5, 60))).tolist() for _ in range(12)]
    scorer = attacks.get_scorer("surp", k=0.5, max_entropy=4.58)
    small = scorer.score(_inputs(features.compute(tiny_neox, seqs, pad_id=0, batch_tokens=64)))
    large = scorer.score(_inputs(features.compute(tiny_neox, seqs, pad_id=0, batch_tokens=4096)))
    np.testing.assert_allclose(small, large, atol=1e-5, rtol=0)  # as test_formulas: fp32 sums move by ~1e-8


def test_surp_declares_its_paper_and_default_set():
    cls = attacks.scorer_class("surp")
    assert cls.title == "SURP" and cls.method == "surp" and "2407.21248" in cls.citation
    assert cls.default_set == "features" and cls.requires == ("features",) and "surp" in attacks.FEATURE_SCORERS
    assert "max_entropy = 2.0" in attacks.surp.__doc__ and "mia_llms_benchmark" in attacks.surp.__doc__


@pytest.mark.slow
def test_surp_is_oriented_on_the_demo_target(tmp_path_factory):
    from attack_helpers import demo_record

    record = demo_record(tmp_path_factory, "surp")
    assert record["metrics"]["auc"] > 0.6, record["metrics"]
    usage = record["provenance"]["usage"]
    assert usage["target_forward_tokens"] == 0 and usage["generated_tokens"] == 0  # the cached features only
    assert record["scorer"]["details"]["texts_without_surprising_tokens"] > 0
