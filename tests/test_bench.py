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
