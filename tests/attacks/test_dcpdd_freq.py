"""DC-PDD's frequency table: built per tokenizer from a declared corpus by `membench dcpdd-freq
build`, refused below the size rule unless forced, kept under MEMBENCH_HOME, used by dc_pdd by
default (and its absence an error naming the command); the pool only by name."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from benchmark import attacks, features, home
from benchmark.attacks import frequency
from benchmark.cli import main
from benchmark.errors import MembenchError
from benchmark.evaluate import MeteredModelAccess

TEXTS = ["the cat sat on the mat.", "a dog ran in the park today.", "x"]
CORPUS = ["the cat and the dog sat in the park.", "on the mat a cat ran.", "today the park was empty."]


@pytest.fixture()
def tmp_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A local model directory (tokenizer trained on the texts, random GPT-NeoX)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from benchmark.targets.demo import train_tokenizer

    folder = tmp_path_factory.mktemp("tiny-model")
    tok = train_tokenizer(TEXTS + CORPUS, folder)
    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, rotary_pct=0.25,
                        eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    GPTNeoXForCausalLM(cfg).eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _corpus_file(path, texts, repeat=1):
    path.write_text("\n".join(json.dumps({"text": t}) for t in texts * repeat) + "\n")
    return path


def test_a_small_corpus_is_refused_unless_forced_and_a_large_one_is_kept(tmp_home, model_dir):
    from benchmark import targets

    target = targets.load_target(str(model_dir))
    vocab = frequency.table_size(target)
    small = _corpus_file(tmp_home / "small.jsonl", CORPUS)
    with pytest.raises(MembenchError, match="per entry, below the rule") as err:
        frequency.build(target, small)
    assert "--force" in err.value.hint
    forced = frequency.build(target, small, force=True)
    assert forced["forced"] and not forced["size_rule"]["met"]
    per_text = sum(len(target.tokenizer(t)["input_ids"]) for t in CORPUS)
    big = _corpus_file(tmp_home / "big.jsonl", CORPUS, repeat=100 * vocab // per_text + 1)
    meta = frequency.build(target, big)
    assert meta["size_rule"]["met"] and not meta["forced"] and meta["corpus"]["n_tokens"] >= 100 * vocab
    counts_path, meta_path = home.dcpdd_table(str(target.tokenizer_hash))
    assert counts_path.parent == home.home() / "dcpdd-freq" and counts_path.exists() and meta_path.exists()
    counts, loaded = frequency.load(target.tokenizer_hash, vocab, who="dc_pdd", target_id=target.id)
    assert counts.sum() == meta["corpus"]["n_tokens"] and loaded["corpus"]["files"][0]["name"] == "big.jsonl"


def test_dc_pdd_uses_the_table_and_names_the_command_without_one(tmp_home, model_dir):
    from benchmark import targets

    target = targets.load_target(str(model_dir))
    ids = [features.tokenize(target.tokenizer, [t], target.max_length)[0] for t in TEXTS]
    stats = features.compute(target.model, ids, pad_id=features.pad_id(target.tokenizer))
    access = MeteredModelAccess(target, granted=("features", "logprobs"))
    inputs = attacks.ScoringInput(uids=["0", "1", "2"], texts=TEXTS, features=stats, access=access)
    with pytest.raises(MembenchError) as err:
        attacks.get_scorer("dc_pdd").score(inputs)
    assert "no DC-PDD frequency table for the tokenizer of" in err.value.message
    assert f"membench dcpdd-freq build --tokenizer {target.id}" in err.value.hint
    assert "dc_pdd:frequency=pool" in err.value.hint

    corpus = _corpus_file(tmp_home / "c.jsonl", CORPUS)
    assert main(["dcpdd-freq", "build", "--tokenizer", str(model_dir), "--corpus", str(corpus), "--force",
                 "--json"]) == 0
    scorer = attacks.get_scorer("dc_pdd", first_token=False)
    out = scorer.score(inputs)
    counts, _ = frequency.load(target.tokenizer_hash, frequency.table_size(target), who="dc_pdd", target_id=target.id)
    freq = (counts + 1.0) / (counts.sum() + len(counts))
    for i, row in enumerate(ids):
        if len(row) < 2:
            assert math.isnan(out[i])
            continue
        s = stats.sample(i)
        seen, terms = set(), []
        for lp, tok_id in zip(s["logprob"], s["token_id"]):
            if int(tok_id) in seen:
                continue
            seen.add(int(tok_id))
            terms.append(min(math.exp(float(lp)) * -math.log(freq[int(tok_id)]), 0.01))
        assert out[i] == pytest.approx(np.mean(terms), abs=1e-9)
    assert scorer.details["frequency"]["source"] == "table" and scorer.details["frequency"]["forced"]


def test_the_pool_is_a_named_substitute():
    cls = attacks.scorer_class("dc_pdd")
    assert attacks.canonical_params(cls, {"frequency": "pool"}) == {"frequency": "pool"}
    assert attacks.canonical_params(cls, {"frequency": "table", "first_token": True}) == {}
    assert attacks.get_scorer("dc_pdd", frequency="pool").needs_pool and not attacks.get_scorer("dc_pdd").needs_pool
    with pytest.raises(ValueError, match="frequency must be one of"):
        attacks.get_scorer("dc_pdd", frequency="c4")


def test_corpus_files_and_formats(tmp_path):
    (tmp_path / "a.txt").write_text("one text\n\nanother text\n")
    (tmp_path / "b.jsonl").write_text('{"text": "third"}\n')
    (tmp_path / "notes.md").write_text("ignored")
    files = frequency.corpus_files(tmp_path)
    assert [p.name for p in files] == ["a.txt", "b.jsonl"]
    assert [t for p in files for t in frequency.read_texts(p)] == ["one text", "another text", "third"]
    with pytest.raises(MembenchError, match="does not exist"):
        frequency.corpus_files(tmp_path / "missing")
    (tmp_path / "c.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(MembenchError, match="no `text` field"):
        list(frequency.read_texts(tmp_path / "c.jsonl"))
