"""Context rules: truncate-head and MIMIR's sliding window; truncated texts flagged; zlib and the
reference attack score the same text on both sides."""

from __future__ import annotations

import math
import zlib as _zlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmark import attacks, features, targets
from benchmark.errors import MembenchError
from benchmark.evaluate import MeteredModelAccess

TEXTS = [
    "Membership inference asks whether a given text was part of a model's training set, and how sure we can be.",
    "Short one.",
    "A",
    "Sliding windows score every token of a long text, each with at least half a context of history before it.",
]


def _mimir_contexts(n: int, max_length: int) -> dict[int, int]:
    """MIMIR's loop (mimir.models.Model.get_probabilities), written out: for each scored token
    index, the index where its context starts."""
    stride = max_length // 2
    out = {}
    for i in range(0, n, stride):
        begin = max(i + stride - max_length, 0)
        end = min(i + stride, n)
        for t in range(i, end):
            if t >= 1:  # the first token of the text is never scored
                assert t not in out
                out[t] = begin
    return out


@pytest.mark.parametrize("max_length", [2, 3, 4, 7, 8, 16])
@pytest.mark.parametrize("n", [0, 1, 2, 5, 8, 9, 16, 17, 33, 100])
def test_sliding_windows_give_every_token_mimirs_context(n, max_length):
    expected = _mimir_contexts(n, max_length)
    got = {}
    for start, end, first in targets.context_windows(n, max_length, "sliding-window"):
        assert end - start <= max_length and start <= first
        for t in range(max(first, start + 1), end):
            assert t not in got
            got[t] = start
    assert got == expected


def test_truncate_head_keeps_the_first_max_length_tokens():
    assert targets.context_windows(10, 4, "truncate-head") == [(0, 4, 1)]
    assert targets.context_windows(3, 4, "sliding-window") == [(0, 3, 1)]  # fits: one row either way
    with pytest.raises(MembenchError, match="unknown context rule 'middle'"):
        targets.context_windows(10, 4, "middle")


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from benchmark.targets.demo import train_tokenizer

    return train_tokenizer(TEXTS * 4 + [t.upper() for t in TEXTS], tmp_path_factory.mktemp("tok"))


def _target(model, tok, max_length, rule, name="t"):
    return SimpleNamespace(id=name, model=model, tokenizer=tok, device="cpu", max_length=max_length,
                           context_rule=rule)


def _model(vocab, seed=0):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    return GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                            intermediate_size=64, max_position_embeddings=64, rotary_pct=0.25)).eval()


def _logprob(model, ids, t, begin):
    """log p(ids[t] | ids[begin:t]) by a plain forward pass over that window alone."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids[begin:t]])).logits[0, -1].double()
    return float(logits.log_softmax(-1)[ids[t]])


def test_sliding_window_statistics_equal_a_window_by_window_loop(tok):
    model = _model(len(tok))
    max_length = 8
    stats = features.text_stats(_target(model, tok, max_length, "sliding-window"), TEXTS, batch_tokens=64)
    for i, text in enumerate(TEXTS):
        ids = tok(text)["input_ids"]
        contexts = _mimir_contexts(len(ids), max_length)
        lp = stats.sample(i)["logprob"]
        assert len(lp) == max(len(ids) - 1, 0) and stats.n_input_tokens[i] == len(ids)
        for k, t in enumerate(sorted(contexts)):
            assert lp[k] == pytest.approx(_logprob(model, ids, t, contexts[t]), abs=1e-5)
    assert not stats.truncated().any()


def test_truncated_texts_are_flagged_with_the_part_that_was_scored(tok):
    model = _model(len(tok))
    stats = features.text_stats(_target(model, tok, 8, "truncate-head"), TEXTS)
    for i, text in enumerate(TEXTS):
        enc = tok(text, return_offsets_mapping=True)
        n = len(enc["input_ids"])
        assert stats.n_text_tokens[i] == n and stats.n_input_tokens[i] == min(n, 8)
        assert stats.truncated()[i] == (n > 8)
        if n > 8:
            assert stats.text_chars[i] == enc["offset_mapping"][7][1]
            assert stats.scored_text(i, text) == text[: enc["offset_mapping"][7][1]]
        else:
            assert stats.scored_text(i, text) == text
        ends = [e for _, e in enc["offset_mapping"][1 : min(n, 8)]]
        assert stats.sample(i)["char_end"].tolist() == ends


def test_zlib_divides_by_the_compressed_length_of_the_scored_part(tok):
    model = _model(len(tok))
    stats = features.text_stats(_target(model, tok, 8, "truncate-head"), TEXTS)
    z = attacks.get_scorer("zlib").score(attacks.ScoringInput(uids=list("abcd"), texts=TEXTS, features=stats))
    assert stats.truncated()[0]
    for i, text in enumerate(TEXTS):
        lp = stats.sample(i)["logprob"].astype(float)
        if not len(lp):
            assert math.isnan(z[i])
            continue
        part = stats.scored_text(i, text)
        assert z[i] == pytest.approx(lp.mean() / len(_zlib.compress(part.encode())), rel=1e-9)
    whole = len(_zlib.compress(TEXTS[0].encode()))
    assert z[0] != pytest.approx(stats.sample(0)["logprob"].astype(float).mean() / whole)


def test_reference_compares_the_same_span_when_the_tokenizers_cut_differently(tok, tmp_path):
    """Target and reference with different tokenizers and contexts cover different prefixes of a
    long text: both means are taken over the tokens ending within the shorter prefix."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in TEXTS for w in t.split()})
    wl = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["<unk>", *words])}, unk_token="<unk>"))
    wl.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    word_tok = PreTrainedTokenizerFast(tokenizer_object=wl, unk_token="<unk>", pad_token="<unk>")
    target = _target(_model(len(tok)), tok, 12, "truncate-head", "target")
    ref = _target(_model(len(word_tok), seed=1), word_tok, 6, "truncate-head", "ref")
    t_stats = features.text_stats(target, TEXTS)
    access = MeteredModelAccess(ref, granted=("features", "reference"), reference=ref)
    scorer = attacks.get_scorer("reference")
    out = scorer.score(attacks.ScoringInput(uids=list("abcd"), texts=TEXTS, features=t_stats, access=access))
    assert scorer.details["common_span_texts"] >= 1
    r_stats = features.text_stats(ref, TEXTS)
    for i, text in enumerate(TEXTS):
        limit = min(t_stats.scored_text(i, text).__len__(), r_stats.scored_text(i, text).__len__())
        sides = []
        for stats in (t_stats, r_stats):
            s = stats.sample(i)
            keep = s["char_end"] <= limit
            sides.append(float(np.mean(s["logprob"][keep].astype(float))) if keep.any() else float("nan"))
        expected = sides[0] - sides[1]
        assert (math.isnan(out[i]) and math.isnan(expected)) or out[i] == pytest.approx(expected, abs=1e-9)
    # the first text is cut at different characters by the two models
    assert t_stats.scored_text(0, TEXTS[0]) != r_stats.scored_text(0, TEXTS[0])


def test_context_rule_is_part_of_the_feature_cache_key():
    split = SimpleNamespace(id="s", content_hash="c")
    head = SimpleNamespace(id="t", revision=None, weights_hash="w", tokenizer_hash="k", dtype="float32",
                           max_length=8, context_rule="truncate-head")
    window = SimpleNamespace(**{**vars(head), "context_rule": "sliding-window"})
    assert features.key_parts(head, split)["context_rule"] == "truncate-head"
    assert features.cache.cache_key(features.key_parts(head, split)) != \
        features.cache.cache_key(features.key_parts(window, split))


def test_entropy_is_derived_from_mu_not_stored(tiny_neox):
    stats = features.compute(tiny_neox, [[5, 17, 3, 42]], pad_id=0)
    assert set(stats.values) == {"logprob", "mu", "sigma"} and features.FEATURE_SET_VERSION == "tokenstats-v4"
    np.testing.assert_array_equal(stats.sample(0)["entropy"], -stats.values["mu"])
    np.testing.assert_array_equal(stats.entropy, -stats.values["mu"])
