"""`membench run` end to end on the demo target: orientation of every built-in attack,
no forward pass for a new feature scorer on a cached split, exclusions, the blind hook."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark import attacks, targets
from benchmark.attacks.base import _SCORERS, Scorer, register
from benchmark.features import engine

ALL = ["loss", "zlib", "lowercase", "min_k", "min_k_plus_plus", "reference", "gradnorm", "neighborhood",
       "recall", "dc_pdd"]
ABOVE_06 = ["loss", "zlib", "lowercase", "min_k", "min_k_plus_plus", "reference", "gradnorm", "neighborhood"]
ABOVE_05 = ["recall", "dc_pdd"]

# The module fixture trains the demo reference model once (about 30 s on an idle 2-core CPU)
# and runs every attack; on a shared, loaded machine that can take far longer.
pytestmark = pytest.mark.timeout(2400)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Every built-in scorer on the demo split (reference: demo/neox-tiny-ref, trained on the
    split's non-member pool only), with a diagnostics file present for the blind hook."""
    from benchmark.runner import run

    out = tmp_path_factory.mktemp("run-results")
    diag = out / "_diagnostics" / "demo" / "pydoc.json"
    diag.parent.mkdir(parents=True)
    diag.write_text(json.dumps({"blind_auc": 0.55}))
    targets.ensure_demo_target(progress=False)
    counter: dict = {}
    # neighbourhood with 3 neighbours per text (default 10) keeps CI time down; no masked model
    # is available offline, so this exercises the documented word-swap fallback
    specs = [s if s != "neighborhood" else "neighborhood:n_neighbors=3,mask_model=none" for s in ALL]
    records = run("demo/neox-tiny", targets.DEMO_SPLIT, specs, results_dir=out, progress=False, counter=counter)
    return out, {r["scorer"]["name"].split("(")[0]: r for r in records}


@pytest.mark.slow
def test_every_attack_is_oriented_on_the_demo_target(demo_run):
    _, by_name = demo_run
    aucs = {name: round(r["metrics"]["auc"], 3) for name, r in by_name.items()}
    for name in ABOVE_06:
        assert aucs[name] > 0.6, aucs
    for name in ABOVE_05:
        assert aucs[name] > 0.5, aucs
    ref = by_name["reference"]["provenance"]["reference"]
    assert ref["id"] == "demo/neox-tiny-ref"
    assert by_name["neighborhood"]["scorer"]["details"]["neighbour_source"] == "word-swap"


@pytest.mark.slow
def test_records_carry_usage_counts_and_the_blind_excess(demo_run):
    _, by_name = demo_run
    for name, r in by_name.items():
        assert set(r) >= {"split", "target", "scorer", "metrics", "counts", "provenance", "per_sample"}
        assert r["metrics"]["best_blind_auc"] == 0.55
        assert r["metrics"]["excess_over_blind"] == pytest.approx(r["metrics"]["auc"] - 0.55)
        assert "usage" in r["provenance"]
        assert r["counts"]["n_scored"] + r["counts"]["excluded_no_scored_tokens"] \
            + r["counts"]["excluded_other_nonfinite"] == r["counts"]["n_samples"]
    assert by_name["loss"]["provenance"]["usage"]["target_forward_tokens"] == 0
    assert by_name["lowercase"]["provenance"]["usage"]["target_forward_texts"] == 390
    assert by_name["gradnorm"]["provenance"]["usage"]["gradient_tokens"] > 0
    assert by_name["recall"]["provenance"]["pool"]["n_texts"] > 0


@pytest.mark.slow
def test_new_feature_scorer_on_a_cached_split_runs_no_forward_pass(demo_run, monkeypatch):
    from benchmark.runner import run

    out, _ = demo_run

    @register
    class MeanEntropy(Scorer):
        name = "test_mean_entropy"

        def score(self, inputs):
            return self.per_sample(inputs, lambda s, _: -float(np.mean(s["entropy"])))

    calls = []
    real = engine.batch_stats
    monkeypatch.setattr(engine, "batch_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    try:
        counter: dict = {}
        (record,) = run("demo/neox-tiny", targets.DEMO_SPLIT, ["test_mean_entropy"], results_dir=out,
                        progress=False, counter=counter)
    finally:
        _SCORERS.pop("test_mean_entropy", None)
    assert calls == [] and counter["forward_passes"] == 0
    assert record["counts"]["n_scored"] == 390


def test_too_short_texts_are_excluded_and_counted_never_nan():
    from benchmark.runner import _metrics_block

    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    scores = np.array([3.0, 2.5, np.nan, 1.0, 0.5, 1.5, np.inf, 0.2])
    too_short = np.array([False, False, True, False, False, False, False, False])
    summary, counts = _metrics_block(labels, scores, too_short)
    assert counts["excluded_no_scored_tokens"] == 1 and counts["excluded_other_nonfinite"] == 1
    assert counts["n_scored"] == 6 and np.isfinite(summary["auc"]) and summary["auc"] == 1.0


def test_scorer_specs_parse_parameters_and_reject_bad_ones():
    from benchmark.errors import MembenchError
    from benchmark.runner import make_scorers, parse_scorer, result_name

    assert parse_scorer("min_k:k=0.1") == ("min_k", {"k": 0.1})
    ((scorer, params),) = make_scorers(["min_k:k=0.1"])
    assert scorer.k == 0.1 and result_name(scorer, params) == "min_k(k=0.1)"
    with pytest.raises(MembenchError, match="does not take"):
        make_scorers(["loss:k=3"])
    with pytest.raises(MembenchError, match="k must be"):
        make_scorers(["min_k:k=2"])
    with pytest.raises(MembenchError, match="unknown scorer"):
        make_scorers(["nope"])


def test_pool_that_overlaps_the_split_is_refused(tmp_path):
    import pandas as pd

    from benchmark import suite
    from benchmark.errors import MembenchError
    from benchmark.runner import run

    split = suite.ensure(targets.DEMO_SPLIT)
    bad = tmp_path / "pool.parquet"
    pd.DataFrame({"text": split.samples["text"].tolist()[:3] + ["an unrelated text"]}).to_parquet(bad)
    targets.ensure_demo_target(progress=False)
    with pytest.raises(MembenchError, match="shares 3 text"):
        run("demo/neox-tiny", targets.DEMO_SPLIT, ["dc_pdd"], results_dir=tmp_path, progress=False, pool=bad)


@pytest.mark.slow
def test_cli_run_json_with_a_parameterized_scorer(demo_run, capsys):
    from benchmark.cli import main

    out, _ = demo_run
    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "min_k:k=0.1",
                 "--results-dir", str(out), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["scorer"]["name"] == "min_k(k=0.1)" and record["scorer"]["params"] == {"k": 0.1}
    assert "largest TPR" in record["metrics"]["tpr_convention"]
    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "recall",
                 "--pool", str(out / "missing.parquet"), "--results-dir", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_compare_gives_the_paired_bootstrap_difference(demo_run, capsys):
    from benchmark import metrics
    from benchmark.cli import main

    out, by_name = demo_run
    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "zlib",
                 "--results-dir", str(out), "--compare", "loss", "zlib", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    c = payload["comparison"]
    assert c["a"] == "loss" and c["b"] == "zlib" and c["n_paired"] == 390
    expected = by_name["loss"]["metrics"]["auc"] - payload["records"][0]["metrics"]["auc"]
    assert c["auc_difference"] == pytest.approx(expected)
    assert c["ci95"][0] <= c["auc_difference"] <= c["ci95"][1]
    assert c["bootstrap"] == {"resamples": metrics.bootstrap.N_RESAMPLES, "seed": 0, "stratified": True,
                              "paired": True}
    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "zlib",
                 "--results-dir", str(out), "--compare", "loss", "nothing"]) == 2
    assert "no result for scorer nothing" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--scorer", "min_k:k=5"], "k must be in (0, 1]"),
    (["--scorer", "min_k:k"], "is not key=value"),
    (["--batch-tokens", "0"], "must be positive"),
    (["--reference", "nope"], "unknown target"),
])
def test_cli_run_bad_input_is_one_line_error(argv, message, capsys):
    from benchmark.cli import main

    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
