"""SPV-MIA's perturbations as the reference code makes them (wjfu99/MIA-LLMs,
``attack/attack_model.py``): the span count with the buffer term, masks placed on the list of
space-separated pieces, T5 sentinels filled by a local T5-style model, whitespace kept outside
the masked pieces, and an unloadable mask model refused (no silent fallback)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from benchmark import attacks
from benchmark.attacks import spv
from benchmark.attacks.spv import SPVMIA, SpanFiller
from benchmark.errors import MembenchError

WORDS = [f"w{i}" for i in range(40)]
SENTINELS = [f"<extra_id_{i}>" for i in range(20)]
CODE = (
    "def area(radius):\n"
    "    \"\"\"Area of a circle.\"\"\"\n"
    "    if radius < 0:\n"
    "        raise ValueError('negative radius')\n"
    "    return 3.14159 * radius ** 2\n"
    "\n"
    "\n"
    "class Shape:\n"
    "    def __init__(self, name):\n"
    "        self.name = name\n"
)


def reference_tokenize_and_mask(text, span_length, pct, rng, buffer_size=1, ceil_pct=False):
    """The reference's tokenize_and_mask, transcribed (np.random.randint -> rng.integers)."""
    tokens = text.split(' ')
    mask_string = '<<<mask>>>'
    n_spans = pct * len(tokens) / (span_length + buffer_size * 2)
    if ceil_pct:
        n_spans = np.ceil(n_spans)
    n_spans = int(n_spans)
    n_masks = 0
    while n_masks < n_spans:
        start = rng.integers(0, len(tokens) - span_length)
        end = start + span_length
        search_start = max(0, start - buffer_size)
        search_end = min(len(tokens), end + buffer_size)
        if mask_string not in tokens[search_start:search_end]:
            tokens[start:end] = [mask_string]
            n_masks += 1
    num_filled = 0
    for idx, token in enumerate(tokens):
        if token == mask_string:
            tokens[idx] = f'<extra_id_{num_filled}>'
            num_filled += 1
    return ' '.join(tokens)


def test_the_span_count_is_the_reference_formula():
    # pct * n / (span + 2 * buffer): 0.3 * 100 / 4 = 7.5 -> 7 spans (not round(0.3 * 100 / 2) = 15)
    assert spv.n_spans(100, 2, 0.3) == 7
    assert spv.n_spans(100, 2, 0.3, ceil_pct=True) == 8
    assert spv.n_spans(37, 3, 0.5, buffer_size=2) == 2
    text = " ".join(f"t{i}" for i in range(100))
    for seed in range(5):
        ours = spv.mask_pieces(text, 2, 0.3, np.random.default_rng(seed))
        theirs = reference_tokenize_and_mask(text, 2, 0.3, np.random.default_rng(seed))
        assert " ".join(ours) == theirs
        assert spv.count_masks(ours) == 7
        assert sum(t.startswith("t") for t in ours) == 100 - 14  # 7 spans of 2 pieces


def test_perturbation_keeps_whitespace_outside_the_masked_pieces():
    # one-word fills (span 1, one-word vocabulary): the perturbed text has the same pieces, some replaced
    pieces = CODE.split(" ")
    for seed in range(3):
        (new,) = spv.word_swap_perturbations(CODE, 1, 1, 0.3, ["XX"], seed=seed)
        out = new.split(" ")
        assert len(out) == len(pieces)
        changed = [i for i, (a, b) in enumerate(zip(pieces, out)) if a != b]
        assert changed and all(out[i] == "XX" for i in changed)
        kept = [p for i, p in enumerate(pieces) if i not in changed]
        assert kept == [p for i, p in enumerate(out) if i not in changed]  # newlines and indentation intact


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


def _scripted(filler, fill: str | None):
    """Make the model answer every row with ``fill`` for each sentinel (None: no fill at all)."""
    import torch

    def generate(input_ids=None, **kwargs):
        rows = []
        for row in input_ids.tolist():
            n = sum(1 for t in row if filler.tok.convert_ids_to_tokens(t).startswith("<extra_id_"))
            text = "" if fill is None else " ".join(f"<extra_id_{i}> {fill}" for i in range(n)) + f" <extra_id_{n}>"
            rows.append([0, *filler.tok(text, add_special_tokens=False)["input_ids"]])
        width = max(len(r) for r in rows)
        return torch.tensor([r + [0] * (width - len(r)) for r in rows])
    filler.model.generate = generate


def test_spans_are_filled_in_order_by_a_local_t5_style_model(t5_dir):
    filler = SpanFiller(str(t5_dir), "spv_mia")
    texts = [" ".join(WORDS[:20]), " ".join(WORDS[5:25])]
    # the real sampling path runs on the random model: every span filled, or the text kept after MAX_TRIES
    sampled, unfilled = filler.perturb(texts[:1], m=1, span_length=2, pct=0.3, seed=0)
    assert len(sampled) == 1 and not any("<extra_id" in t for t in sampled[0]) and unfilled in (0, 1)
    _scripted(filler, "w39")
    out, unfilled = filler.perturb(texts, m=3, span_length=2, pct=0.3, seed=1)
    assert unfilled == 0 and [len(p) for p in out] == [3, 3]
    for text, perturbed in zip(texts, out):
        for new in perturbed:
            assert "<extra_id" not in new and new.count("w39") == spv.n_spans(20, 2, 0.3)
            assert len(new.split(" ")) == 20 - spv.n_spans(20, 2, 0.3)  # each 2-piece span became one fill
    assert filler.perturb(texts, m=3, span_length=2, pct=0.3, seed=1)[0] == out  # seeded


def test_an_unfilled_text_is_retried_then_kept_and_counted(t5_dir, monkeypatch):
    filler = SpanFiller(str(t5_dir), "spv_mia")
    _scripted(filler, None)
    monkeypatch.setattr(spv, "MAX_TRIES", 3)
    text = " ".join(WORDS[:20])
    out, unfilled = filler.perturb([text], m=2, span_length=2, pct=0.3, seed=0)
    assert out == [[text, text]] and unfilled == 2


def test_an_unloadable_t5_is_refused_naming_the_download_and_the_substitute(tmp_path):
    scorer = attacks.get_scorer("spv_pv", n_perturbations=2)  # default mask model t5-base, not cached here
    texts = [" ".join(WORDS[:12]), " ".join(WORDS[5:20])]
    access = SimpleNamespace(target=SimpleNamespace(device="cpu"), usage={}, batch_tokens=1024)
    inputs = attacks.ScoringInput(uids=["a", "b"], texts=texts, access=access, pool=[" ".join(WORDS), "w1 w2"])
    with pytest.raises(MembenchError) as err:
        scorer.score(inputs)
    assert "T5 mask model t5-base is not in the local Hugging Face cache" in err.value.message
    assert "huggingface-cli download t5-base" in err.value.hint and "spv_pv:perturbation=word-swap" in err.value.hint
    with pytest.raises(MembenchError, match="cannot be loaded from that folder"):
        SpanFiller(str(tmp_path), "spv_mia")


def test_the_substitute_is_a_named_setting():
    assert attacks.canonical_params(attacks.scorer_class("spv_mia"), {"perturbation": "word-swap"}) == {
        "perturbation": "word-swap"}
    assert attacks.canonical_params(attacks.scorer_class("spv_mia"), {"perturbation": "t5"}) == {}
    with pytest.raises(ValueError, match="perturbation must be one of"):
        SPVMIA(perturbation="random")


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
    with pytest.raises(MembenchError, match="sentinel"):
        SpanFiller(str(tmp_path), "spv_mia")


def test_the_reference_recipe_defaults_are_the_authors():
    """The official code's self-prompt reference (README, refer_data_generate.py, config.yaml) as
    named, overridable defaults: 16-token prompts, up to 10,000 texts generated to the block
    length, the target's recipe at 0.2 of its epochs and half its learning rate (10 -> 2 epochs,
    1e-4 -> 5e-5); 10 T5-base fills of spans of 2 at pct 0.3 with buffer 1."""
    scorer = attacks.get_scorer("spv_mia")
    assert (scorer.n_reference_texts, scorer.prompt_tokens, scorer.max_new_tokens) == (10000, 16, None)
    assert (scorer.reference_epoch_ratio, scorer.reference_lr_ratio) == (0.2, 0.5)
    assert (scorer.n_perturbations, scorer.span_length, scorer.mask_rate, scorer.buffer_size) == (10, 2, 0.3, 1)
    assert (scorer.perturbation, scorer.mask_model, scorer.top_p) == ("t5", "t5-base", 1.0)
    target = SimpleNamespace(id="ft/x", max_length=2048, spec=SimpleNamespace(extra={"recipe_full": {
        "train": {"epochs": 10, "lr": 1e-4, "block_size": 128}}}))
    plan = scorer.reference_recipe(target)
    assert plan["train"]["epochs"] == 2 and plan["train"]["lr"] == pytest.approx(5e-5)
    assert plan["max_new_tokens"] == 128 - 16  # generated to the block length
    lighter = attacks.get_scorer("spv_mia", reference_epoch_ratio=0.5, max_new_tokens=64).reference_recipe(target)
    assert lighter["train"]["epochs"] == 5 and lighter["max_new_tokens"] == 64
