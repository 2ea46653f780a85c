"""The GPU path, as far as a CPU can check it: the token budget that follows device memory
(with a fake memory probe), MFU arithmetic and the peak table, device placement decisions, and
one clear line when a GPU is requested where none exists."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark import features
from benchmark.features import batching as budget_mod
from benchmark.features.batching import TokenBudget
from benchmark.features.throughput import device_peak, matmul_parameters, mfu


class FakeProbe(budget_mod.MemoryProbe):
    """A device with ``free`` bytes where every padded token of a batch costs ``per_token``
    bytes at peak (the test tells it the batch size)."""

    def __init__(self, free: int, per_token: int, base: int = 1_000):
        self.free, self.per_token, self.base, self.batch = free, per_token, base, 0

    def allocated(self):
        return self.base

    def reset_peak(self):
        pass

    def peak(self):
        return self.base + self.per_token * self.batch

    def available(self):
        return self.free


def test_budget_grows_to_the_free_memory_at_most_fourfold_per_step():
    probe = FakeProbe(free=10_000_000, per_token=1_000)
    b = TokenBudget(1_000, probe)
    fits = int(budget_mod.HEADROOM * 10_000_000 / 1_000)  # 8,500 tokens
    seen = []
    for _ in range(4):
        b.before_batch()
        probe.batch = b.tokens  # a full batch
        b.after_batch(b.tokens)
        seen.append(b.tokens)
    assert seen == [4_000, fits, fits, fits]
    assert [h["event"] for h in b.history] == ["grow", "grow"]


def test_budget_halves_on_out_of_memory_and_never_grows_past_a_failure():
    probe = FakeProbe(free=10_000_000, per_token=1_000)
    b = TokenBudget(8_000, probe)
    b.halve(failed_rows=16, failed_tokens=8_000)
    assert (b.tokens, b.max_rows, b.ceiling) == (4_000, 8, 4_000)
    b.before_batch()
    probe.batch = 4_000
    b.after_batch(4_000)  # memory says 8,500 would fit, but 8,000 failed: stay under the ceiling
    assert b.tokens == 4_000
    from benchmark.features.forward import next_batch

    assert len(next_batch(list(range(50)), 0, [100] * 50, b.tokens, b.max_rows)) == 8  # 40 by tokens, 8 by the cap


def test_budget_shrinks_when_memory_is_taken_by_others():
    probe = FakeProbe(free=2_000_000, per_token=1_000)
    b = TokenBudget(4_000, probe)
    b.before_batch()
    probe.batch = 4_000
    b.after_batch(4_000)
    assert b.tokens == int(budget_mod.HEADROOM * 2_000_000 / 1_000) == 1_700
    assert b.history[-1]["event"] == "shrink"


def test_budget_without_a_probe_stays_put():
    b = TokenBudget(512)
    b.before_batch()
    b.after_batch(512)
    assert b.tokens == 512 and b.history == []


def test_an_adaptive_budget_changes_batches_but_not_scores(tiny_neox, monkeypatch):
    rng = np.random.default_rng(3)
    seqs = [rng.integers(1, 97, size=int(n)).tolist() for n in rng.integers(2, 60, size=40)]
    fixed = features.compute(tiny_neox, seqs, pad_id=0, batch_tokens=60)
    probe = FakeProbe(free=50_000_000, per_token=2_000)
    real = features.forward.batch_stats

    def sized(model, ids, mask, *a, **k):
        probe.batch = int(ids.numel())
        return real(model, ids, mask, *a, **k)

    monkeypatch.setattr(features.forward, "batch_stats", sized)
    adaptive_budget = TokenBudget(60, probe)
    counter: dict = {}
    adaptive = features.compute(tiny_neox, seqs, pad_id=0, budget=adaptive_budget, counter=counter)
    assert adaptive_budget.tokens > 60 and counter["forward_passes"] < 40
    for name in features.STATS:
        np.testing.assert_allclose(adaptive.values[name], fixed.values[name], atol=1e-5)


def test_mfu_is_two_parameters_tokens_over_time_and_peak(tiny_neox):
    n = matmul_parameters(tiny_neox)
    total = sum(p.numel() for p in tiny_neox.parameters())
    assert n == total - tiny_neox.get_input_embeddings().weight.numel()  # untied: the lookup is not a product
    assert mfu(n, 1_000, 2.0, 1e12) == pytest.approx(2 * n * 1_000 / 2.0 / 1e12)
    assert mfu(n, 1_000, 2.0, None) is None

    from transformers import OPTConfig, OPTForCausalLM

    tied = OPTForCausalLM(OPTConfig(vocab_size=97, hidden_size=32, num_hidden_layers=1, ffn_dim=64, num_attention_heads=4,
                                    max_position_embeddings=64, word_embed_proj_dim=32))
    assert matmul_parameters(tied) == sum(p.numel() for p in tied.parameters())  # tied head still multiplies


@pytest.mark.parametrize("name, model, tflops", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 989), ("NVIDIA H100 PCIe", "H100 PCIe", 756),
    ("NVIDIA H100 NVL", "H100 NVL", 835), ("NVIDIA H200", "H200 SXM", 989), ("NVIDIA H200 NVL", "H200 NVL", 835),
    ("NVIDIA A100-SXM4-80GB", "A100", 312), ("NVIDIA A100 80GB PCIe", "A100", 312),
    ("NVIDIA L40S", "L40S", 362), ("NVIDIA L4", "L4", 121),
])
def test_peak_is_named_per_device_model(name, model, tflops):
    assert device_peak(name) == (model, tflops * 1e12)


def test_unknown_device_has_no_peak():
    assert device_peak("Tesla T4") is None and device_peak("NVIDIA GeForce GTX 1080") is None


def test_spreading_decision_and_parameter_count(tmp_path, tiny_neox):
    from benchmark.targets.loading import fits_on_device, param_count

    tiny_neox.save_pretrained(tmp_path)
    assert param_count(tmp_path) == sum(p.numel() for p in tiny_neox.parameters())  # from the header alone
    assert fits_on_device(10 * 2**30, None)  # no device memory to ask: one device
    assert fits_on_device(10 * 2**30, 20 * 2**30) and not fits_on_device(24 * 2**30, 25 * 2**30)


needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


@needs_no_gpu
@pytest.mark.parametrize("command", [
    ["bench", "--random-init", "--target", "pythia-70m", "--device", "cuda", "--dtype", "bfloat16"],
    ["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--device", "cuda:1"],
])
def test_a_gpu_requested_where_none_exists_is_one_line(command, capsys):
    from benchmark.cli import main

    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "has no CUDA GPU" in err and "--device cpu" in err


def test_an_unknown_device_is_one_line(capsys):
    from benchmark.cli import main

    assert main(["bench", "--random-init", "--target", "pythia-70m", "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err
