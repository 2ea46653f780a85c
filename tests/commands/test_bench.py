"""`membench bench`: harness and per-sample loop side by side, agreeing on every score."""

from __future__ import annotations

import json

import pytest


def test_bench_random_init_architecture_json(capsys):
    from benchmark.cli import main

    assert main(["bench", "--target", "pythia-70m", "--random-init", "--n-texts", "3", "--tokens", "24",
                 "--peak-tflops", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["texts"] == 3 and r["tokens"] >= 3 * 12
    assert r["scorers"] == ["dc_pdd", "loss", "min_k", "min_k_plus_plus", "zlib"]
    assert r["max_abs_score_difference"] < 1e-4  # the two paths compute the same scores
    assert r["speedup"] > 0 and r["harness"]["tokens_per_s"] > 0 and r["per_sample_loop"]["tokens_per_s"] > 0
    # Kaplan forward FLOPs: 2N (N ~ 70m minus embeddings, plus the untied output projection)
    assert 5e7 < r["flops_per_token"] < 3e8
    assert 0 < r["harness"]["mfu"] < 1


def test_bench_refuses_half_precision_on_cpu(capsys):
    from benchmark.cli import main

    assert main(["bench", "--target", "pythia-70m", "--random-init", "--dtype", "bfloat16"]) == 2
    assert "need a GPU" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--target", "nope"]])
def test_bench_unknown_target_is_one_line_error(bad, capsys):
    from benchmark.cli import main

    assert main(["bench", "--random-init", *bad]) == 2
    assert "unknown target" in capsys.readouterr().err


def test_bench_shows_progress(capsys):
    from benchmark.cli import main

    assert main(["bench", "--target", "pythia-70m", "--random-init", "--n-texts", "2", "--tokens", "12"]) == 0
    captured = capsys.readouterr()
    assert "harness" in captured.err and "per-sample loop" in captured.err  # tqdm bars on stderr
    assert "speed-up of the harness" in captured.out and "peak host memory" in captured.out


@pytest.fixture
def tiny_demo_home(tmp_path, monkeypatch):
    """A fresh MEMBENCH_HOME whose demo target and reference are tiny random models (so the
    profiled runs are quick); the demo split is built offline as usual."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from benchmark import suite, targets
    from benchmark.targets.demo import train_tokenizer

    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    texts = suite.ensure("demo/pydoc").samples["text"].tolist()[:50]
    for seed, target_id in enumerate(["demo/neox-tiny", "demo/neox-tiny-ref"]):
        out = targets.demo_target_dir(target_id)
        tok = train_tokenizer(texts, out)
        torch.manual_seed(seed)
        GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=32, max_position_embeddings=64, rotary_pct=0.25)
                           ).save_pretrained(out)
        (out / "training.json").write_text(json.dumps({"trained_on": "nothing: a random model for this test",
                                                       "tokenizer_trained_on": targets.DEMO_TOKENIZER_FROM}))
    return tmp_path / "home"


def test_bench_profile_times_the_phases_of_cold_and_warm_runs(tiny_demo_home, capsys):
    from benchmark.cli import main

    assert main(["bench", "--profile", "--repeat", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    cold, warm, single = r["cold"], r["warm"], r["warm_single_scorer"]
    forward = {row["model"] for row in cold["phases"] if row["phase"] == "forward" and row["seconds"] > 0}
    assert forward == {"demo/neox-tiny", "demo/neox-tiny-ref"}  # both passes ran, each timed
    assert not any(row["phase"] == "forward" for row in warm["phases"])  # everything was cached
    for run in (cold, warm, single):
        phases = {row["phase"] for row in run["phases"]}
        assert {"start-up", "scoring", "metrics", "writing", "other"} <= phases
        assert all(row["seconds"] >= 0 for row in run["phases"])
        assert sum(row["seconds"] for row in run["phases"]) == pytest.approx(run["wall_s"], abs=0.01)
    assert cold["imported"]["torch"] and not single["imported"]["torch"] and not single["imported"]["transformers"]
    assert set(r["scorer_seconds_per_2000_texts"]) == {"loss", "zlib", "min_k", "min_k_plus_plus", "surp", "reference"}
    assert r["warm_single_over_help"] > 0 and len(r["load_average"]) == 3
