"""Neighbourhood comparison as Mattern et al. / MIMIR run it: every stored neighbour by default,
MIMIR's BERT one-token swap for generated neighbours (transcribed from
``mimir/attacks/neighborhood.py`` and compared with that transcription on a tiny local BERT),
an unloadable BERT refused, and the word-swap substitute only by name, keeping whitespace."""

from __future__ import annotations

from heapq import nlargest
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmark import attacks
from benchmark.attacks import neighborhood
from benchmark.attacks.neighborhood import BertSwap, word_swap_neighbours
from benchmark.errors import MembenchError

TEXTS = ["the quick brown fox jumps over the lazy dog again.", "python lists are mutable; tuples are not."]
WORDS = sorted({w.strip(".;,") for t in TEXTS for w in t.split()} | {"cat", "slow", "red", "sets"})


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ";", ","] + WORDS
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def mimir_generate_neighbors(model, tokenizer, text, n_neighbors, dropout):
    """MIMIR's BertModel.generate_neighbors_ (deterministic strategy, in-place swap), transcribed."""
    token_dropout = torch.nn.Dropout(p=dropout)
    tokenizer_output = tokenizer(text, padding=True, truncation=True, return_offsets_mapping=True,
                                 max_length=512, return_tensors="pt")
    text_tokenized = tokenizer_output.input_ids
    num_tokens = len(text_tokenized[0, :])
    token_positions = tokenizer_output.offset_mapping[0]
    replacements = dict()
    for target_token_index in range(1, num_tokens):
        target_token = text_tokenized[0, target_token_index]
        embeds = model.bert.embeddings(text_tokenized)
        embeds = torch.cat((embeds[:, :target_token_index, :],
                            token_dropout(embeds[:, target_token_index, :]).unsqueeze(dim=0),
                            embeds[:, target_token_index + 1:, :]), dim=1)
        token_probs = torch.softmax(model(inputs_embeds=embeds).logits, dim=2)
        original_prob = token_probs[0, target_token_index, target_token]
        top_probabilities, top_candidates = torch.topk(token_probs[:, target_token_index, :], 6, dim=1)
        for cand, prob in zip(top_candidates[0], top_probabilities[0]):
            if not cand == target_token:
                if original_prob.item() == 1:
                    replacements[(target_token_index, cand)] = prob.item() / (1 - 0.9)
                else:
                    replacements[(target_token_index, cand)] = prob.item() / (1 - original_prob.item())
    replacement_keys = nlargest(n_neighbors, replacements, key=replacements.get)
    replacements = {rk: replacements[rk] for rk in replacement_keys}
    neighbors = []
    for single in nlargest(100, replacements, key=replacements.get):
        target_token_index, cand = single
        start, end = token_positions[target_token_index]
        fill_in_text = tokenizer.decode(cand).replace("##", "")
        neighbors.append(text[:start] + fill_in_text + text[end:])
    return neighbors


def test_bert_swap_equals_mimir_transcribed(bert_dir, monkeypatch):
    swap = BertSwap(str(bert_dir))
    # without dropout both are deterministic: the same neighbours in the same order
    monkeypatch.setattr(neighborhood, "DROPOUT", 0.0)
    for text in TEXTS:
        with torch.no_grad():
            theirs = mimir_generate_neighbors(swap.model, swap.tok, text, 7, dropout=0.0)
        assert swap.neighbours(text, 7, seed=0) == theirs


def test_bert_swap_neighbours_are_seeded_one_token_swaps(bert_dir):
    swap = BertSwap(str(bert_dir))
    text = TEXTS[0]
    a = swap.neighbours(text, 5, seed=1)
    assert a == swap.neighbours(text, 5, seed=1) and len(a) == 5 and len(set(a)) == 5
    for n in a:  # in place: one token's characters replaced, the rest of the text as it was
        assert n != text
        lead = 0
        while lead < min(len(n), len(text)) and n[lead] == text[lead]:
            lead += 1
        tail = 0
        while tail < min(len(n), len(text)) - lead and n[-1 - tail] == text[-1 - tail]:
            tail += 1
        assert " " not in text[lead:len(text) - tail].strip()  # (MIMIR's [SEP] swap prepends: nothing removed)


def test_all_stored_neighbours_are_used_by_default(monkeypatch):
    stored = {"a": [f"n{i}" for i in range(25)], "b": [f"m{i}" for i in range(25)]}
    seen = []

    class Access:
        def logprobs(self, texts):
            seen.extend(texts)
            return ("stats of", len(texts))

    monkeypatch.setattr(neighborhood, "mean_logprob", lambda stats: np.zeros(stats[1] if stats else 2))
    scorer = attacks.get_scorer("neighborhood")
    scorer.score(attacks.ScoringInput(uids=["a", "b"], texts=["x", "y"], access=Access(), neighbors=stored))
    assert len(seen) == 50 and scorer.details["rule"] == "all stored neighbours"
    seen.clear()
    scorer = attacks.get_scorer("neighborhood", n_neighbors=10)
    scorer.score(attacks.ScoringInput(uids=["a", "b"], texts=["x", "y"], access=Access(), neighbors=stored))
    assert len(seen) == 20


def test_an_unloadable_bert_is_refused_naming_the_download_and_the_substitute():
    scorer = attacks.get_scorer("neighborhood")  # bert-base-uncased: not in this machine's cache
    inputs = attacks.ScoringInput(uids=["a"], texts=[TEXTS[0]], access=SimpleNamespace(target=None))
    with pytest.raises(MembenchError) as err:
        scorer.score(inputs)
    assert "neighbour model bert-base-uncased is not in the local Hugging Face cache" in err.value.message
    assert "huggingface-cli download bert-base-uncased" in err.value.hint
    assert "neighborhood:generator=word-swap" in err.value.hint


def test_word_swap_is_a_named_substitute_that_keeps_whitespace():
    assert attacks.canonical_params(attacks.scorer_class("neighborhood"), {"generator": "word-swap"}) == {
        "generator": "word-swap"}
    code = "def f(x):\n    return x + 1\n\n\nclass A:\n    pass\n"
    a = word_swap_neighbours(code, 6, ["alpha", "beta"], seed=3)
    assert a == word_swap_neighbours(code, 6, ["alpha", "beta"], seed=3)
    for n in a:
        assert n != code and n.count("\n") == code.count("\n") and n.count("    ") == code.count("    ")
        changed = [(x, y) for x, y in zip(n.split(" "), code.split(" ")) if x != y]
        assert len(n.split(" ")) == len(code.split(" ")) and len(changed) == 1


def test_the_grid_estimate_counts_the_default_neighbours():
    """n_neighbors defaults to None (every stored neighbour, or 25 generated): the cost estimate
    counts 25 passes for it, and the number given otherwise."""
    from benchmark.grid import estimate

    assert estimate.scorer_passes(["neighborhood"]) == (25.0, 0.0, [])
    assert estimate.scorer_passes(["neighborhood:n_neighbors=10", "dc_pdd"]) == (11.0, 0.0, [])
