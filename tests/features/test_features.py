"""The feature pass: sharded cache with resume, hash-checked shards, OOM halving."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark import features
from benchmark.features import cache, forward

TEXTS = [f"sample {i} " + "word " * (i % 13) + "end" for i in range(23)] + ["x"]


class _Tok:
    """A character tokenizer (ids 1..96), no special tokens: enough for the cache logic."""

    pad_token_id = 0
    eos_token_id = 0

    def __call__(self, texts, add_special_tokens=True):
        return {"input_ids": [[(ord(c) % 96) + 1 for c in t] for t in texts]}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def target(tiny_neox):
    return SimpleNamespace(id="tiny", revision=None, weights_hash="w", tokenizer_hash="t", dtype="float32",
                           max_length=128, model=tiny_neox, tokenizer=_Tok(), device="cpu")


@pytest.fixture
def split():
    uids = [f"u{i:03d}" for i in range(len(TEXTS))]
    return SimpleNamespace(id="test/split", content_hash="c1", samples=pd.DataFrame({"uid": uids, "text": TEXTS}))


def _same(a, b):
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.n_input_tokens, b.n_input_tokens)
    np.testing.assert_array_equal(a.token_ids, b.token_ids)
    for k in features.STATS:
        np.testing.assert_array_equal(a.values[k], b.values[k])


def test_cache_hit_runs_no_forward_pass_and_matches(home, target, split):
    first, second = {}, {}
    a = features.get_features(target, split, shard_size=5, batch_tokens=200, counter=first)
    b = features.get_features(target, split, shard_size=5, batch_tokens=200, counter=second)
    assert first["forward_passes"] > 0 and second.get("forward_passes", 0) == 0
    assert second["shards_cached"] == 5
    _same(a, b)
    assert a.n_scored()[-1] == 0  # "x": one token, nothing scored


def test_killed_run_resumes_from_its_shards_with_identical_results(home, target, split, monkeypatch):
    reference = features.get_features(target, split, shard_size=5, batch_tokens=200)
    for f in home.joinpath("features").rglob("shard-*"):
        f.unlink()
    real_save, saved = cache.save_shard, []

    def dying_save(key, index, stats, uids):
        if len(saved) == 2:
            raise KeyboardInterrupt  # killed after two shards
        real_save(key, index, stats, uids)
        saved.append(index)

    monkeypatch.setattr(cache, "save_shard", dying_save)
    with pytest.raises(KeyboardInterrupt):
        features.get_features(target, split, shard_size=5, batch_tokens=200)
    monkeypatch.setattr(cache, "save_shard", real_save)
    counter = {}
    resumed = features.get_features(target, split, shard_size=5, batch_tokens=200, counter=counter)
    assert counter["shards_cached"] == 2
    _same(reference, resumed)


def test_corrupt_shard_is_detected_by_hash_and_recomputed(home, target, split, caplog):
    good = features.get_features(target, split, shard_size=5)
    shard = sorted(home.joinpath("features").rglob("shard-00001.npz"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    counter = {}
    with caplog.at_level("WARNING"):
        again = features.get_features(target, split, shard_size=5, counter=counter)
    assert "does not match its hash" in caplog.text
    assert counter["shards_cached"] == 4 and counter["forward_passes"] > 0
    _same(good, again)


def test_cache_key_changes_with_everything_that_changes_features(target, split):
    base = features.key_parts(target, split)
    for field, value in [("weights_hash", "w2"), ("tokenizer_hash", "t2"), ("dtype", "bfloat16"),
                         ("revision", "step1000"), ("max_length", 64)]:
        changed = SimpleNamespace(**{**vars(target), field: value})
        assert cache.cache_key(features.key_parts(changed, split)) != cache.cache_key(base)
    other = SimpleNamespace(**{**vars(split), "content_hash": "c2"})
    assert cache.cache_key(features.key_parts(target, other)) != cache.cache_key(base)


class _OOMAbove:
    """Wraps a model; a forward over more than ``rows`` rows raises an out-of-memory error."""

    def __init__(self, model, rows):
        self.model, self.rows, self.calls = model, rows, []

    def __call__(self, input_ids, attention_mask, **kw):
        self.calls.append(input_ids.shape[0])
        if input_ids.shape[0] > self.rows:
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **kw)

    def forward(self, input_ids, attention_mask, position_ids=None):  # signature only
        raise NotImplementedError


def test_out_of_memory_halves_the_batch_and_carries_on(tiny_neox):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 97, size=int(n)).tolist() for n in rng.integers(2, 30, size=12)]
    wrapped = _OOMAbove(tiny_neox, rows=3)
    counter = {}
    out = features.compute(wrapped, seqs, pad_id=0, batch_tokens=10_000, counter=counter)
    expected = features.compute(tiny_neox, seqs, pad_id=0, batch_tokens=10_000)
    assert counter["oom_halvings"] >= 2 and max(r for r in wrapped.calls[-3:]) <= 3
    np.testing.assert_allclose(out.values["logprob"], expected.values["logprob"], atol=1e-5)


def test_one_row_out_of_memory_is_a_clear_error(tiny_neox):
    from benchmark.errors import MembenchError

    with pytest.raises(MembenchError, match="does not fit in memory"):
        features.compute(_OOMAbove(tiny_neox, rows=0), [[1, 2, 3]], pad_id=0)


def test_statistics_are_fp32_from_bf16_weights(tiny_neox):
    import copy

    half = copy.deepcopy(tiny_neox).to(torch.bfloat16)
    stats = features.compute(half, [[1, 2, 3, 4, 5, 6]], pad_id=0)
    assert all(v.dtype == np.float32 for v in stats.values.values())
    assert np.isfinite(stats.values["sigma"]).all()


def test_statistics_do_not_depend_on_the_chunk_size(tiny_neox, monkeypatch):
    monkeypatch.setattr(forward, "STATS_CHUNK_TOKENS", 16)  # forces many chunks
    seqs = [[1 + (i * j) % 90 for j in range(20)] for i in range(1, 7)]
    a = features.compute(tiny_neox, seqs, pad_id=0)
    monkeypatch.setattr(forward, "STATS_CHUNK_TOKENS", 100_000)
    b = features.compute(tiny_neox, seqs, pad_id=0)
    np.testing.assert_allclose(a.values["sigma"], b.values["sigma"], atol=1e-6)


def test_changing_the_shard_layout_starts_the_entry_over(home, target, split):
    a = features.get_features(target, split, shard_size=5)
    counter = {}
    b = features.get_features(target, split, shard_size=7, counter=counter)
    assert counter["shards_cached"] == 0 and counter["forward_passes"] > 0
    # other batches, so equal to fp32 batch invariance (bit-identity holds for one layout)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    for k in features.STATS:
        np.testing.assert_allclose(a.values[k], b.values[k], atol=1e-5)
    assert len(list(home.joinpath("features").rglob("shard-*.npz"))) == 4  # ceil(24 / 7)


def test_chunked_head_gives_the_models_own_logits(tiny_neox):
    """Logits built chunk by chunk from hidden states equal the model's own, for GPT-NeoX and
    OPT, and the statistics equal the full-logits path."""
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    from benchmark.features import forward

    torch.manual_seed(0)
    opt = OPTForCausalLM(OPTConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, ffn_dim=64,
                                   num_attention_heads=4, max_position_embeddings=128,
                                   word_embed_proj_dim=16)).eval()
    ids = torch.tensor([[5, 17, 3, 42, 8, 8, 1], [9, 2, 60, 7, 0, 0, 0]])
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    for model in (tiny_neox, opt):
        trunk, head = forward.trunk_and_head(model)
        with torch.no_grad():
            full = model(input_ids=ids, attention_mask=mask).logits
            chunked = head(trunk(input_ids=ids, attention_mask=mask).last_hidden_state)
        torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-5)
        fast = forward.batch_stats(model, ids, mask)
        slow = forward.batch_stats(_OOMAbove(model, rows=99), ids, mask)  # no config: full logits
        for a, b in zip(fast, slow):
            for name in ("logprob", "mu", "sigma"):
                np.testing.assert_allclose(a[name], b[name], atol=1e-5)


def test_a_reference_sharing_the_tokenizer_reuses_the_tokenization():
    """prepare() of the same texts for a second model with the same tokenizer files, model
    type and context reuses the first one's rows (the reference of the demo, of Pythia...);
    any of those changed, it tokenizes again."""

    class Counting(_Tok):
        calls = 0

        def __call__(self, texts, add_special_tokens=True):
            Counting.calls += 1
            return super().__call__(texts, add_special_tokens)

    def handle(name, tokenizer_hash="t1", max_length=16, model_type="gpt_neox"):
        return SimpleNamespace(id=name, tokenizer_hash=tokenizer_hash, max_length=max_length, tokenizer=Counting(),
                               config={"model_type": model_type}, context_rule="truncate-head")

    texts = list(TEXTS)
    first = features.prepare(handle("target"), texts)
    assert Counting.calls == 1
    again = features.prepare(handle("reference"), list(texts))
    assert again is first and Counting.calls == 1
    for other in (handle("r", tokenizer_hash="t2"), handle("r", max_length=8), handle("r", model_type="opt")):
        assert features.prepare(other, texts) is not first
    assert Counting.calls == 4
    features.prepare(handle("r", tokenizer_hash="t2"), texts[:-1] + ["y"])  # other texts
    assert Counting.calls == 5
    nameless = SimpleNamespace(id="x", tokenizer_hash="unknown", max_length=16, tokenizer=Counting(), config={})
    features.prepare(nameless, texts)
    features.prepare(nameless, texts)
    assert Counting.calls == 7  # no tokenizer files to vouch for it: never reused
