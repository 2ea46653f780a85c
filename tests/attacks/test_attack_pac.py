"""PAC: per-sample scores equal a transcription of the authors' code (github.com/yyy01/PAC:
``attack.py``, ``src/eda.py``, ``src/prob.py``) on a tiny model, the polarized distance by hand,
neighbours that do not depend on the batch, and orientation on the demo target."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from attack_helpers import inputs_for, texts, tiny_target
from benchmark import attacks
from benchmark.attacks.pac import polarized_distance

TEXTS = texts(8, seed=4)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    return tiny_target(tmp_path_factory.mktemp("pac-model"), TEXTS + texts(30, seed=5))


def _text_seed(seed: int, text: str) -> int:
    """Where membench departs from the authors' one stream: a seed per text."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{text}".encode()).digest()[:8], "big")


def _reference_eda(sentence: str, alpha: float, num_aug: int) -> list[str]:
    """The authors' EDA random swap on the global ``random`` module: w = words split on single
    spaces, max(1, int(alpha w)) swaps per neighbour, a swap given up after four draws of the same
    position, the neighbours shuffled."""
    words = sentence.split(" ")
    out = []
    for _ in range(num_aug):
        new = list(words)
        for _ in range(max(1, int(alpha * len(words)))):
            a = random.randint(0, len(new) - 1)
            b, tries, done = a, 0, False
            while b == a:
                b = random.randint(0, len(new) - 1)
                tries += 1
                if tries > 3:
                    done = True
                    break
            if not done:
                new[a], new[b] = new[b], new[a]
        out.append(" ".join(new))
    random.shuffle(out)
    return out[:num_aug]


def _reference_logprobs(model, tokenizer, text: str) -> list[float]:
    """The authors' white-box probabilities: encode the whole text, log-softmax, read each token."""
    import torch

    ids = torch.tensor(tokenizer.encode(text)).unsqueeze(0)
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits, dim=-1)
    return [logp[0, i, t].item() for i, t in enumerate(ids[0][1:])]


def _reference_pd(probs, local=0.3, far=0.05) -> float:
    n_local, n_far = max(int(len(probs) * local), 1), max(int(len(probs) * far), 1)
    return float(np.mean(np.sort(probs)[::-1][:n_far]) - np.mean(np.sort(probs)[:n_local]))


def test_pac_equals_the_authors_computation(target):
    scorer = attacks.get_scorer("pac")
    ours = scorer.score(inputs_for(target, TEXTS, ("features", "logprobs")))
    model, tok = target.model, target.tokenizer
    expected = []
    for text in TEXTS:
        random.seed(_text_seed(0, text))
        neighbours = _reference_eda(text, 0.3, 5)
        pac = _reference_pd(_reference_logprobs(model, tok, text)) - np.mean(
            [_reference_pd(_reference_logprobs(model, tok, n)) for n in neighbours])
        expected.append(-pac)  # the authors rank with -PAC
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_the_neighbours_are_the_authors_swaps_under_the_text_seed():
    scorer = attacks.get_scorer("pac", n_aug=4, alpha=0.5, seed=7)
    text = "one two three four five six seven eight nine ten"
    random.seed(_text_seed(7, text))
    assert scorer.neighbours(text) == _reference_eda(text, 0.5, 4)
    for n in scorer.neighbours(text):  # swaps only: the same words, another order
        assert sorted(n.split(" ")) == sorted(text.split(" ")) and n != text
    assert attacks.get_scorer("pac", seed=8).neighbours(text) != attacks.get_scorer("pac", seed=7).neighbours(text)


def test_polarized_distance_by_hand():
    lp = np.array([-0.1, -0.2, -3.0, -0.4, -5.0, -0.3, -2.0, -1.0, -0.5, -4.0,
                   -0.6, -0.7, -0.8, -0.9, -1.1, -1.2, -1.3, -1.4, -1.5, -1.6])
    # n = 20: far = the top max(int(1.0), 1) = 1 value (-0.1); local = the lowest 6: -5, -4, -3, -2, -1.6, -1.5
    assert polarized_distance(lp, 0.3, 0.05) == pytest.approx(-0.1 - np.mean([-5, -4, -3, -2, -1.6, -1.5]))
    assert polarized_distance(np.array([-2.0]), 0.3, 0.05) == 0.0  # one token: both regions are it


def test_pac_scores_do_not_move_with_the_batch_or_the_other_texts(target):
    scorer = attacks.get_scorer("pac")
    full = scorer.score(inputs_for(target, TEXTS, ("features", "logprobs")))
    alone = [scorer.score(inputs_for(target, [t], ("features", "logprobs")))[0] for t in TEXTS[:3]]
    np.testing.assert_allclose(full[:3], alone, atol=1e-5, rtol=0)
    small = inputs_for(target, TEXTS, ("features", "logprobs"))
    small.access.batch_tokens = 32
    np.testing.assert_allclose(scorer.score(small), full, atol=1e-5, rtol=0)


def test_pac_meters_its_forward_passes(target):
    inputs = inputs_for(target, TEXTS, ("features", "logprobs"))
    attacks.get_scorer("pac", n_aug=3).score(inputs)
    assert inputs.access.usage["target_forward_texts"] == 3 * len(TEXTS)
    assert inputs.access.usage["target_forward_tokens"] > 0


def test_pac_declares_its_paper():
    cls = attacks.scorer_class("pac")
    assert (cls.title, cls.method, cls.default_set) == ("PAC", "pac", "model")
    assert "2405.11930" in cls.citation and "yyy01/PAC" in attacks.pac.__doc__


@pytest.mark.slow
def test_pac_is_oriented_on_the_demo_target(tmp_path_factory):
    from attack_helpers import demo_record

    record = demo_record(tmp_path_factory, "pac")
    assert record["metrics"]["auc"] > 0.5, record["metrics"]
    usage = record["provenance"]["usage"]
    assert usage["target_forward_texts"] == 5 * record["counts"]["n_samples"] and usage["target_forward_tokens"] > 0
