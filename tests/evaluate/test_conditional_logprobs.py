"""`conditional_logprobs` scores exactly the tokens `logprobs` scores, conditioned on a prefix,
whatever special tokens the tokenizer adds (none like Pythia, BOS like OPT, BOS and EOS like
many chat models): checked against a forward pass written out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from benchmark.evaluate import MeteredModelAccess

WORDS = [f"w{i}" for i in range(80)]


def _tokenizer(template: str | None):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if template:
        tok.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<unk>",
                                   bos_token="<s>", eos_token="</s>")


def _by_hand(model, ids: list[int], k: int) -> np.ndarray:
    """Log-probabilities of the last k tokens of ``ids``, each given everything before it."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    return logp[len(logp) - k:].numpy()


@pytest.mark.parametrize("template, lead", [(None, 0), ("<s> $A", 1), ("<s> $A </s>", 1)])
def test_conditional_logprobs_score_the_tokens_logprobs_scores(tiny_neox, template, lead):
    tok = _tokenizer(template)
    target = SimpleNamespace(id="tiny", tokenizer=tok, max_length=64, model=tiny_neox, device="cpu",
                             tokenizer_hash="t", vocab_size=len(tok))
    access = MeteredModelAccess(target, granted=("features", "logprobs"))
    texts = ["w1 w2 w3 w4 w5", "w10 w11 w12", "w7 w8 w9 w10 w11 w12 w13"]
    prefix = "w40 w41 w42 w43"
    alone = access.logprobs(texts)
    cond = access.conditional_logprobs(prefix, texts)
    prefix_ids = tok(prefix)["input_ids"]
    for i, text in enumerate(texts):
        full = tok(text)["input_ids"]
        a, c = alone.sample(i), cond.sample(i)
        # the same tokens, one fewer than the text's ids, EOS included where the tokenizer adds it
        assert len(c["logprob"]) == len(a["logprob"]) == len(full) - 1
        assert list(c["token_id"]) == list(a["token_id"]) == full[1:]
        expected = _by_hand(tiny_neox, prefix_ids + full[lead:], len(full) - 1)
        np.testing.assert_allclose(c["logprob"], expected, atol=1e-4)
        # and alone, the same numbers as a forward pass of the text by itself
        np.testing.assert_allclose(a["logprob"], _by_hand(tiny_neox, full, len(full) - 1), atol=1e-4)
    # an empty prefix is the text alone
    np.testing.assert_allclose(access.conditional_logprobs("", texts).values["logprob"], alone.values["logprob"],
                               atol=1e-5)
