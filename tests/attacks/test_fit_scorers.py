"""The trainable scorers' definitions by hand (MIA-Tuner's objectives, Con-ReCall's score and
its gamma, threshold calibration's operating point), the fit budget and its meter, and the
rules on labels: no model needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.attacks import CalibrationLabels, FitBudget, FitMeter, ScoringInput, specs
from benchmark.api import DeniedAccess
from benchmark.attacks.fit_budget import BudgetExceeded
from benchmark.attacks.calibrated import choose_threshold
from benchmark.attacks.con_recall import GAMMAS, ConReCaLL
from benchmark.errors import MembenchError
from benchmark.features import TokenStats


def test_the_contrastive_term_is_the_reference_codes():
    """C_i = -log(sum_{j != i, same class} e^{s_ij} / sum_{j != i} e^{s_ij}),
    s_ij = exp(-|L_i - L_j| / 10) / T, by hand."""
    import torch

    from benchmark.attacks.mia_tuner import contrastive_term, unaligned_objective

    losses = np.array([2.0, 2.5, 4.0, 3.0, 5.5])
    members = np.array([True, True, False, False, False])
    by_temperature = {}
    for temperature in (1.0, 0.5):
        want = []
        for i in range(5):
            s = {j: math.exp(-abs(losses[i] - losses[j]) / 10) / temperature for j in range(5) if j != i}
            same = sum(math.exp(v) for j, v in s.items() if members[j] == members[i])
            want.append(-math.log(same / sum(math.exp(v) for v in s.values())))
        got = contrastive_term(torch.tensor(losses), torch.tensor(members), temperature).numpy()
        assert got == pytest.approx(want, rel=1e-12)
        by_temperature[temperature] = np.mean(want)
    gap = losses[members].mean() - losses[~members].mean()  # members already lower: the gap term is 0
    total = unaligned_objective(torch.tensor(losses), torch.tensor(members)).item()
    assert gap < 0 and total == pytest.approx(by_temperature[1.0])
    # with the classes swapped the members have the higher losses: the gap adds relu(-gap)
    flipped = unaligned_objective(torch.tensor(losses), torch.tensor(~members)).item()
    assert flipped == pytest.approx(float(contrastive_term(torch.tensor(losses), torch.tensor(~members)).mean()) - gap)


def test_the_aligned_objective_by_hand():
    import torch

    from benchmark.attacks.mia_tuner import MIATunerAligned

    scorer = MIATunerAligned(prompt_loss_weight=0.01)
    lps = [torch.tensor([-1.0, -2.0]), torch.tensor([-0.5, -1.5, -2.5]), torch.tensor([-3.0]), torch.tensor([-1.0, -1.0])]
    members = torch.tensor([True, True, False, False])
    nexts = torch.tensor([[-0.2, -1.8], [-1.0, -0.5], [-0.7, -0.9], [-2.0, -0.1]])  # (log p_Yes, log p_No)
    got = scorer._batch_objective(lps, nexts, members).item()
    lp = [x.numpy() for x in lps]
    y, n = nexts[:, 0].numpy(), nexts[:, 1].numpy()
    answer = [y[0], y[1], n[2], n[3]]
    llm = [(-0.01 * lp[i].sum() - answer[i]) / (len(lp[i]) + 1) for i in range(4)]
    llm_loss = (np.mean(llm[:2]) + np.mean(llm[2:])) / 2

    def ce(logits, target):
        return -(logits[target] - np.log(np.exp(logits).sum()))

    clf = np.mean([ce(np.array([n[i], y[i]]), 1 if i < 2 else 0) for i in range(4)])
    err = -np.mean([np.log(1 - np.exp(n[0])) + np.log(1 - np.exp(y[2])), np.log(1 - np.exp(n[1])) + np.log(1 - np.exp(y[3]))])
    assert got == pytest.approx(llm_loss + clf + err, rel=1e-6)
    assert scorer._score_rows(None, nexts.numpy()) == pytest.approx(np.exp(y) / (np.exp(y) + np.exp(n)))


def test_threshold_calibration_chooses_the_best_tpr_within_the_fpr_budget():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([9.0, 7.0, 5.0, 1.0, 8.0, 4.0, 3.0, 2.0, 0.0])
    # FPR <= 0.2 (at most one of five non-members): t = 5 admits 9, 7, 5 and the non-member 8
    assert choose_threshold(y, s, 0.2) == {"threshold": 5.0, "tpr": 0.75, "fpr": 0.2, "n_members": 4, "n_nonmembers": 5}
    assert choose_threshold(y, s, 0.0)["threshold"] == 9.0  # no false positive: only the top member
    assert choose_threshold(y, s, 0.8)["threshold"] == 1.0 and choose_threshold(y, s, 0.8)["tpr"] == 1.0
    # t = 4 reaches the same TPR as t = 5 with FPR 0.4: the lower FPR is chosen
    assert choose_threshold(y, s, 0.5)["threshold"] == 5.0 and choose_threshold(y, s, 0.5)["fpr"] == 0.2
    # when no calibration score admits few enough false positives, nobody seen is admitted
    out = choose_threshold(np.array([1, 0]), np.array([1.0, 2.0]), 0.0)
    assert out["threshold"] > 2.0 and out["tpr"] == 0.0 and out["fpr"] == 0.0
    # non-finite scores are left out of the choice
    assert choose_threshold(np.append(y, 0), np.append(s, np.nan), 0.2)["threshold"] == 5.0


def test_threshold_calibration_wraps_feature_scorers_only_and_names_its_base_canonically():
    assert specs.expand("calibrated:base=loss") == [("calibrated", {})]
    assert specs.expand("calibrated:base=min_k:k=0.2") == [("calibrated", {"base": "min_k"})]
    assert specs.expand("calibrated:base=min_k(k=0.1),target_fpr=0.01") == [
        ("calibrated", {"base": "min_k:k=0.1", "target_fpr": 0.01})]
    with pytest.raises(MembenchError, match="wraps scorers that need only the cached features"):
        specs.build("calibrated", {"base": "recall"})
    with pytest.raises(MembenchError, match="unknown scorer 'nope'"):
        specs.build("calibrated", {"base": "nope"})


class _FakeAccess:
    """conditional_logprobs from fixed per-text values: LL(x | P) = table[P][x]."""

    def __init__(self, table):
        self.table = table
        self.scorer = "con_recall"

    def conditional_logprobs(self, prefix, texts):
        return TokenStats.from_lists([{"logprob": np.array([self.table[prefix][t]] * 2, np.float32),
                                       "entropy": np.zeros(2, np.float32), "mu": np.zeros(2, np.float32),
                                       "sigma": np.ones(2, np.float32)} for t in texts], [3] * len(texts))


def _stats(values):
    return TokenStats.from_lists([{"logprob": np.array([v] * 2, np.float32), "entropy": np.zeros(2, np.float32),
                                   "mu": np.zeros(2, np.float32), "sigma": np.ones(2, np.float32)} for v in values],
                                 [3] * len(values))


def test_con_recall_score_by_hand_and_gamma_chosen_on_calibration():
    rng = np.random.default_rng(0)
    n = 40
    texts = [f"t{i}" for i in range(n)]
    y = np.array([i % 2 for i in range(n)])
    alone = -rng.uniform(2, 4, n)
    # members: the member prefix helps them (only a gamma > 0 separates the classes)
    mem = alone * (1 - 0.2 * y) + rng.normal(0, 0.01, n)
    non = alone + rng.normal(0, 0.3, n)
    scorer = ConReCaLL(shots=1, seed=0)
    # the prefixes are drawn from the calibration texts: fix the table for any pair
    pick = np.random.default_rng(0)
    p_mem = ConReCaLL.join([texts[int(pick.choice(np.flatnonzero(y == 1)))]])
    p_non = ConReCaLL.join([texts[int(pick.choice(np.flatnonzero(y == 0)))]])
    access = _FakeAccess({p_mem: dict(zip(texts, mem)), p_non: dict(zip(texts, non))})
    inputs = ScoringInput(uids=texts, texts=texts, features=_stats(alone), access=access)
    scorer.fit(inputs, CalibrationLabels(y))
    assert scorer.prefixes == (p_mem, p_non)
    held = [i for i in range(n) if texts[i] + "\n\n" not in (p_mem, p_non)]
    from sklearn.metrics import roc_auc_score

    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731 - features are stored as float32
    best = max(GAMMAS, key=lambda g: (roc_auc_score(y[held], (f32(non) - g * f32(mem))[held] / f32(alone)[held]), -g))
    assert scorer.fitted_gamma == best and best > 0
    got = scorer.score(inputs)
    assert got == pytest.approx((f32(non) - best * f32(mem)) / f32(alone), rel=1e-9)
    fixed = ConReCaLL(shots=1, seed=0, gamma=0.0)
    fixed.fit(inputs, CalibrationLabels(y))
    assert fixed.fitted_gamma == 0.0 and fixed.score(inputs) == pytest.approx(f32(non) / f32(alone))


def test_fit_budget_parses_and_refuses_bad_caps():
    assert FitBudget.parse(None) == FitBudget()
    b = FitBudget.parse("steps=20, forward_tokens=2e6,seconds=90.5")
    assert (b.steps, b.forward_tokens, b.backward_tokens, b.seconds) == (20, 2_000_000, FitBudget().backward_tokens, 90.5)
    for bad, says in (("steps", "is not one of"), ("epochs=3", "is not one of"), ("steps=0", "positive"),
                      ("seconds=inf", "positive"), ("forward_tokens=lots", "positive")):
        with pytest.raises(MembenchError, match=says):
            FitBudget.parse(bad)


def test_the_meter_refuses_a_call_before_it_passes_a_cap():
    now = [0.0]
    meter = FitMeter(FitBudget(steps=2, forward_tokens=100, backward_tokens=50, seconds=10), "s", clock=lambda: now[0])
    meter.charge(forward_tokens=60, backward_tokens=50, steps=1)
    with pytest.raises(BudgetExceeded, match="forward tokens would reach 120, over the cap of 100"):
        meter.charge(forward_tokens=60)
    assert meter.counts == {"steps": 1, "forward_tokens": 60, "backward_tokens": 50}  # the refused call counted nothing
    meter.charge(forward_tokens=40, steps=1)
    with pytest.raises(BudgetExceeded, match="steps would reach 3"):
        meter.charge(steps=1)
    now[0] = 10.5
    with pytest.raises(BudgetExceeded, match="seconds would reach 10.5 s, over the cap of 10 s"):
        meter.charge()
    assert meter.usage() == {"training_steps": 2, "forward_tokens": 100, "backward_tokens": 50, "wall_seconds": 10.5}


def test_labels_are_readable_inside_fit_only():
    labels = CalibrationLabels([1, 0, 1], scorer="s")
    assert np.asarray(labels).tolist() == [1, 0, 1] and len(labels) == 3 and list(labels) == [1, 0, 1]
    labels.close()
    for read in (lambda: np.asarray(labels), lambda: labels[0], lambda: len(labels), lambda: labels.tolist()):
        with pytest.raises(MembenchError, match="scorer s asked for labels outside fit"):
            read()
    with pytest.raises(MembenchError, match="asked for labels outside fit"):
        ScoringInput(uids=["a"], texts=["x"]).labels
    with pytest.raises(ValueError):
        CalibrationLabels([0, 2])


def test_a_soft_prompt_needs_the_fit_capability():
    with pytest.raises(MembenchError, match="needs the capability 'fit'"):
        DeniedAccess("s", ("features",)).soft_prompt(5)
