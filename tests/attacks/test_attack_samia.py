"""SaMIA and SaMIA*zlib: per-sample scores equal a transcription of the authors' scoring
(github.com/nlp-titech/samia ``src/eval_samia.py``) on the samples drawn, ``sample`` is Hugging
Face sampling under a seed per prompt (deterministic, independent of the other prompts), ROUGE-1
and the suffix cut by hand, the cost in the record, and orientation on the demo target."""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np
import pytest

from attack_helpers import inputs_for, run_small, small_env, texts, tiny_target
from benchmark import attacks
from benchmark.evaluate import MeteredModelAccess
from benchmark.evaluate.model_access import sample_seed
from benchmark.attacks.samia import rouge_1, split_text, words

TEXTS = texts(4, seed=21, lo=10, hi=18)
SETTING = dict(num_samples=3, max_length=48, seed=5)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    return tiny_target(tmp_path_factory.mktemp("samia-model"), TEXTS + texts(30, seed=22))


class Spy:
    """An access that records what ``sample`` returned."""

    def __init__(self, access):
        self.access, self.drawn = access, []

    def __getattr__(self, name):
        return getattr(self.access, name)

    def sample(self, prompts, *args, **kwargs):
        out = self.access.sample(prompts, *args, **kwargs)
        self.drawn.append((list(prompts), out))
        return out


def _reference_suffix(text: str, ratio: float, text_length: int) -> list[str]:
    """The authors' suffix: the non-empty items of text.split(" ") after round(L * ratio)."""
    items = [w for w in text.split(" ") if w != ""]
    return items[round(text_length * ratio):]


def _reference_rouge(candidate, reference, n=1) -> float:
    if not candidate or not reference:
        return 0
    grams = lambda seq: Counter(zip(*[seq[i:] for i in range(n)]))  # noqa: E731
    return sum((grams(reference) & grams(candidate)).values()) / len(reference)


def _reference_scores(text, outputs, use_zlib):
    """The authors' per-text score: each output (prompt and continuation decoded together) cut
    like the reference text; ROUGE-1 recall, times the zlib length of the candidate with --zlib;
    averaged over the samples. L is the nominal length of a WikiMIA split: here the word count."""
    length = len(text.split())
    ref = _reference_suffix(text, 0.5, length)
    per = []
    for out in outputs:
        cand = _reference_suffix(out, 0.5, length)
        r = _reference_rouge(cand, ref)
        per.append(r * len(zlib.compress(" ".join(cand).encode("utf-8"))) if use_zlib else r)
    return float(np.mean(per))


@pytest.mark.parametrize("name, use_zlib", [("samia", False), ("samia_zlib", True)])
def test_samia_equals_the_authors_scoring(target, name, use_zlib):
    inputs = inputs_for(target, TEXTS, ("features", "generate"))
    spy = Spy(inputs.access)
    inputs.access = spy
    ours = attacks.get_scorer(name, **SETTING).score(inputs)
    assert len(spy.drawn) == len(TEXTS)
    for i, (text, (prompts, (outputs,))) in enumerate(zip(TEXTS, spy.drawn)):
        words_ = text.split()
        assert prompts == [" ".join(words_[: int(len(words_) * 0.5)])]  # the authors' prefix
        assert len(outputs) == 3
        assert ours[i] == pytest.approx(_reference_scores(text, [prompts[0] + o for o in outputs], use_zlib))


def test_sample_is_hugging_face_sampling_under_a_seed_per_prompt(target):
    import torch

    access = MeteredModelAccess(target, granted=("generate",))
    prompts = ["alpha beta gamma delta", "red green blue"]
    drawn = access.sample(prompts, 6, num_samples=2, temperature=1.0, top_k=50, top_p=1.0, seed=3)
    assert [len(d) for d in drawn] == [2, 2]
    assert access.sample(prompts, 6, num_samples=2, top_k=50, seed=3) == drawn  # deterministic
    assert access.sample(prompts[1:], 6, num_samples=2, top_k=50, seed=3) == drawn[1:]  # not the other prompts
    assert access.sample(prompts, 6, num_samples=2, top_k=50, seed=4) != drawn
    tok, model = target.tokenizer, target.model
    ids = tok(prompts[0])["input_ids"]
    torch.manual_seed(sample_seed(3, ids))
    x = torch.tensor([ids])
    gen = model.generate(x, attention_mask=torch.ones_like(x), do_sample=True, temperature=1.0, top_k=50, top_p=1.0,
                         max_new_tokens=6, num_return_sequences=2, pad_token_id=tok.eos_token_id)
    expected = []
    for row in gen[:, len(ids):].tolist():
        cut = next((j + 1 for j, t in enumerate(row) if t == tok.eos_token_id), len(row))
        expected.append(tok.decode(row[:cut], skip_special_tokens=True))
    assert drawn[0] == expected
    assert access.usage["generated_tokens"] > 0


def test_rouge_and_the_suffix_cut_by_hand():
    assert rouge_1(["a", "b", "b", "c"], ["b", "b", "b", "d"]) == pytest.approx(2 / 4)
    assert rouge_1([], ["a"]) == 0.0 and rouge_1(["a"], []) == 0.0
    prompt, cut = split_text("w1 w2 w3 w4 w5 w6 w7", 0.5)
    assert prompt == "w1 w2 w3" and cut == 4  # int(3.5) words prompt; round(3.5) = 4 words cut, as the authors
    assert words("a  b\nc  d") == ["a", "b\nc", "d"]


def test_a_memorised_suffix_scores_higher():
    class Echo:  # a model that continues with the true suffix, or with something else
        def __init__(self, suffix):
            self.suffix = suffix

        def tokenize(self, texts_):
            return [[1] * len(t.split()) for t in texts_]

        def sample(self, prompts, max_new, num_samples, **kw):
            return [[" " + self.suffix] * num_samples]

    text = "the cat sat on the mat and then the dog came home"
    seen = attacks.ScoringInput(uids=["a"], texts=[text], access=Echo("and then the dog came home"))
    unseen = attacks.ScoringInput(uids=["a"], texts=[text], access=Echo("while birds sang over green hills"))
    scorer = attacks.get_scorer("samia", num_samples=2)
    assert scorer.score(seen)[0] == 1.0 and scorer.score(unseen)[0] == 0.0


def test_samia_records_its_cost(tmp_path_factory, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        env = small_env(tmp_path_factory, mp, n=6)
        (record,) = run_small(env, ["samia:num_samples=2,max_length=40"], tmp_path / "r")
    usage = record["provenance"]["usage"]
    assert usage["generated_tokens"] > 0 and usage["target_forward_tokens"] > 0
    assert record["scorer"]["details"]["samples_per_text"] == 2
    assert record["scorer"]["name"] == "samia(max_length=40,num_samples=2)"


def test_samia_declares_its_paper():
    for name, title in (("samia", "SaMIA"), ("samia_zlib", "SaMIA*zlib")):
        cls = attacks.scorer_class(name)
        assert (cls.title, cls.method, cls.default_set) == (title, "samia", "model")
        assert "2404.11262" in cls.citation and cls.requires == ("features", "generate")
    assert "nlp-titech/samia" in attacks.samia.__doc__


@pytest.mark.slow
def test_samia_finds_the_suffixes_a_model_has_by_heart(tmp_path):
    """Orientation where the paper's signal applies: a target that regenerates its members.
    (On the demo target, whose members' tokens average p = 0.03, temperature-1 samples do not
    come back verbatim: AUC 0.47 on the 20 shortest texts of each class with 2 samples.)"""
    from sklearn.metrics import roc_auc_score

    from attack_helpers import memorizing_target

    pool = texts(8, seed=23, lo=14, hi=20)
    target = memorizing_target(tmp_path / "memo", pool[:4], texts(20, seed=24), steps=240)
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    inputs = inputs_for(target, pool, ("features", "generate"))
    scores = attacks.get_scorer("samia", num_samples=3, max_length=48).score(inputs)
    assert roc_auc_score(labels, scores) > 0.9, scores
