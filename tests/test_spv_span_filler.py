"""SPV-MIA's mask-filling path with a T5-style model from a local folder (no Hub): a tiny
random T5 with sentinel tokens is loaded as `mask_model`, every span is replaced by a sentinel,
and the model's fills are put back in order; a model that leaves a span unfilled falls back to
the seeded word filler for that text, and the record says which source made the perturbations."""

from __future__ import annotations

import pytest

from benchmark.attacks.spv import SpanFiller, SPVMIA

WORDS = [f"w{i}" for i in range(40)]
SENTINELS = [f"<extra_id_{i}>" for i in range(10)]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    folder = tmp_path_factory.mktemp("tiny-t5")
    vocab = {t: i for i, t in enumerate(["<pad>", "</s>", "<unk>", *SENTINELS, *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                            additional_special_tokens=SENTINELS).save_pretrained(folder)
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    return folder


def _scripted(filler, fills):
    """Make the model answer with the given fill per sentinel, as a trained T5 would."""
    import torch

    def generate(**kwargs):
        text = " ".join(f"<extra_id_{i}> {f}" for i, f in enumerate(fills)) + " </s>"
        ids = filler.tok(text, add_special_tokens=False)["input_ids"]
        return torch.tensor([[0, *ids]])
    filler.model.generate = generate


def test_spans_are_filled_in_order_by_a_local_t5_style_model(t5_dir):
    filler = SpanFiller(str(t5_dir))
    text = " ".join(WORDS[:20])
    # the real sampling path runs on the random model: it fills every span or says it did not
    sampled = filler.perturb(text, m=2, span_length=2, mask_rate=0.3, seed=0)
    assert sampled is None or (len(sampled) == 2 and not any("<extra_id" in t for t in sampled))
    _scripted(filler, ["w30 w31"] * 10)
    out = filler.perturb(text, m=3, span_length=2, mask_rate=0.3, seed=1)
    assert out is not None and len(out) == 3
    for new in out:
        words = new.split()
        assert len(words) == 20 and not any(w.startswith("<extra_id") for w in words)
        changed = [i for i, (a, b) in enumerate(zip(text.split(), words)) if a != b]
        assert changed and all(words[i] in ("w30", "w31") for i in changed)
    # the same seed masks the same spans
    assert filler.perturb(text, m=3, span_length=2, mask_rate=0.3, seed=1) == out


def test_an_unfilled_span_falls_back_and_the_source_is_recorded(t5_dir, monkeypatch):
    scorer = SPVMIA(n_perturbations=2, mask_model=str(t5_dir))
    real = SpanFiller.__init__

    def init(self, name, device="cpu"):
        real(self, name, device)
        _scripted(self, [])  # answers with no fill at all
    monkeypatch.setattr(SpanFiller, "__init__", init)
    texts = [" ".join(WORDS[:12]), " ".join(WORDS[5:20])]
    out, source = scorer.perturbations(texts, pool=[" ".join(WORDS)])
    assert source == "seeded-word-fallback" and [len(p) for p in out] == [2, 2]

    def init_ok(self, name, device="cpu"):
        real(self, name, device)
        _scripted(self, ["w39"] * 10)
    monkeypatch.setattr(SpanFiller, "__init__", init_ok)
    out, source = scorer.perturbations(texts, pool=[" ".join(WORDS)])
    assert source == f"t5-span-fill:{t5_dir}" and all("w39" in p for ps in out for p in ps)


def test_a_model_without_sentinels_is_refused(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    vocab = {t: i for i, t in enumerate(["<pad>", "</s>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(tmp_path)
    T5ForConditionalGeneration(T5Config(vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                        num_heads=2, decoder_start_token_id=0)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="sentinel"):
        SpanFiller(str(tmp_path))
