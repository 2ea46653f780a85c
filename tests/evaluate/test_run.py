"""`membench run` end to end on the demo target: orientation of every built-in attack,
no forward pass for a new feature scorer on a cached split, exclusions, the blind hook."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark import attacks, targets
from benchmark.api import Scorer
from benchmark.attacks.registry import register, unregister
from benchmark.evaluate import RunSpec, run
from benchmark.features import forward

ALL = ["loss", "zlib", "lowercase", "min_k", "min_k_plus_plus", "reference", "gradnorm", "neighborhood",
       "recall", "dc_pdd"]
ABOVE_06 = ["loss", "zlib", "lowercase", "min_k", "min_k_plus_plus", "reference", "gradnorm", "neighborhood"]
ABOVE_05 = ["recall", "dc_pdd"]

# The module fixture trains the demo reference model once (about 30 s on an idle 2-core CPU)
# and runs every attack; on a shared, loaded machine that can take far longer.
pytestmark = pytest.mark.timeout(2400)
DEMO_TARGETS = ("demo/neox-tiny", "demo/neox-tiny-ref")  # the runs below score `reference` too


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Every built-in scorer on the demo split (reference: demo/neox-tiny-ref, trained on the
    split's non-member pool only), with a diagnostics file present for the blind hook. The
    module's tests share its MEMBENCH_HOME (a copy of the demo build), so they find its
    feature cache."""
    import conftest

    home = tmp_path_factory.mktemp("run-home")
    if conftest._DEMO_BUILD:
        conftest.copy_build(conftest._DEMO_BUILD[0], home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMBENCH_HOME", str(home))
        out = tmp_path_factory.mktemp("run-results")
        diag = out / "_diagnostics" / "demo" / "pydoc.json"
        diag.parent.mkdir(parents=True)
        diag.write_text(json.dumps({"blind_auc": 0.55}))
        targets.ensure_demo_target(progress=False)
        # neighbourhood with 3 neighbours per text (default 25 generated) keeps CI time down; no BERT
        # is available offline, so this asks for the word-swap substitute by name
        # DC-PDD counts the demo's pool by name (no large corpus is declared for the demo tokenizer)
        named = {"neighborhood": "neighborhood:n_neighbors=3,generator=word-swap", "dc_pdd": "dc_pdd:frequency=pool"}
        specs = [named.get(s, s) for s in ALL]
        records = run(RunSpec.build("demo/neox-tiny", targets.DEMO_SPLIT, specs, results_dir=out,
                                    progress=False)).records
        yield out, {r["scorer"]["name"].split("(")[0]: r for r in records}


@pytest.mark.slow(needs=DEMO_TARGETS)
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


@pytest.mark.slow(needs=DEMO_TARGETS)
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


@pytest.mark.slow(needs=DEMO_TARGETS)
def test_new_feature_scorer_on_a_cached_split_runs_no_forward_pass(demo_run, monkeypatch):
    out, _ = demo_run

    @register
    class MeanEntropy(Scorer):
        name = "test_mean_entropy"

        def score(self, inputs):
            return self.per_sample(inputs, lambda s, _: -float(np.mean(s["entropy"])))

    calls = []
    real = forward.batch_stats
    monkeypatch.setattr(forward, "batch_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    try:
        report = run(RunSpec.build("demo/neox-tiny", targets.DEMO_SPLIT, ["test_mean_entropy"], results_dir=out,
                                   progress=False))
    finally:
        unregister("test_mean_entropy")
    (record,) = report.records
    assert calls == [] and report.usage["forward_passes"] == 0
    assert record["counts"]["n_scored"] == 390


def test_too_short_texts_are_excluded_and_counted_never_nan():
    from benchmark.evaluate import metrics_block

    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    scores = np.array([3.0, 2.5, np.nan, 1.0, 0.5, 1.5, np.inf, 0.2])
    too_short = np.array([False, False, True, False, False, False, False, False])
    summary, counts = metrics_block(labels, scores, too_short)
    assert counts["excluded_no_scored_tokens"] == 1 and counts["excluded_other_nonfinite"] == 1
    assert counts["n_scored"] == 6 and np.isfinite(summary["auc"]) and summary["auc"] == 1.0


def test_scorer_specs_parse_parameters_and_reject_bad_ones():
    from benchmark.errors import MembenchError
    from benchmark.evaluate import make_scorers, result_name

    ((scorer, params),) = make_scorers(["min_k:k=0.1"])
    assert scorer.k == 0.1 and params == {"k": 0.1} and result_name(scorer, params) == "min_k(k=0.1)"
    with pytest.raises(MembenchError, match="has no parameter 'k'"):
        make_scorers(["loss:k=3"])
    with pytest.raises(MembenchError, match="k must be"):
        make_scorers(["min_k:k=2"])
    with pytest.raises(MembenchError, match="unknown scorer"):
        make_scorers(["nope"])


@pytest.mark.parametrize("spec, expected", [
    ("min_k:k=0.2", ("min_k", {})),            # the default: the same setting as plain min_k
    ("min_k:k=0.20", ("min_k", {})),
    ("min_k:k=1", ("min_k", {"k": 1.0})),      # cast to the parameter's type
    ("min_k:k=0.1", ("min_k", {"k": 0.1})),
    ("neighborhood:n_neighbors=3,generator=word-swap", ("neighborhood", {"generator": "word-swap",
                                                                         "n_neighbors": 3})),
    ("neighborhood:generator=bert", ("neighborhood", {})),
    ("recall:shots=1.0", ("recall", {})),      # an integral float is the integer
])
def test_parameters_are_canonical_against_the_defaults(spec, expected):
    from benchmark.evaluate import scorer_settings

    assert scorer_settings([spec]) == [expected]


def test_one_setting_has_one_result_name():
    from benchmark.results import scorer_label
    from benchmark.evaluate import scorer_settings

    settings = scorer_settings(["min_k", "min_k:k=0.2", "min_k:k=0.1", "min_k:k=0.10"])
    assert [scorer_label(*s) for s in settings] == ["min_k", "min_k(k=0.1)"]


def test_a_value_list_is_a_grid_and_defaults_collapse():
    from benchmark.evaluate import scorer_settings

    assert scorer_settings(["min_k:k=0.05,0.1,0.2,0.5"]) == [
        ("min_k", {"k": 0.05}), ("min_k", {"k": 0.1}), ("min_k", {}), ("min_k", {"k": 0.5})]
    grid = scorer_settings(["recall:shots=1,2,seed=0,3"])
    assert grid == [("recall", {}), ("recall", {"seed": 3}), ("recall", {"shots": 2}),
                    ("recall", {"seed": 3, "shots": 2})]


@pytest.mark.parametrize("spec, message", [
    ("neighborhood:n_neighbors=2.5", "n_neighbors must be an integer, got '2.5'"),
    ("min_k:k=abc", "k must be a number"),
    ("min_k:k=nan", "k must be a finite number"),
    ("min_k:kk=0.1", "has no parameter 'kk'; did you mean 'k'"),
    ("recall:shot=3", "recall accepts: shots, seed"),
    ("min_k:k=0.1,k=0.2", "appears twice"),
    ("min_k:0.1", "is not key=value"),
])
def test_parameter_values_are_type_checked_against_the_signature(spec, message):
    from benchmark.errors import MembenchError
    from benchmark.evaluate import scorer_settings

    with pytest.raises(MembenchError) as exc:
        scorer_settings([spec])
    assert message in str(exc.value)


def test_compare_names_mean_the_settings_of_this_run():
    from benchmark.errors import MembenchError
    from benchmark.evaluate import compare_labels, scorer_settings

    run = scorer_settings(["min_k:k=0.1", "reference"])
    # a bare name means the run's one setting of that scorer, never an older default file
    assert compare_labels(["reference", "min_k"], run) == (["reference", "min_k(k=0.1)"], [])
    assert compare_labels(["min_k(k=0.1)", "reference"], run)[0] == ["min_k(k=0.1)", "reference"]
    # a scorer the run does not score yet is added to it
    assert compare_labels(["loss", "min_k:k=0.1"], run) == (["loss", "min_k(k=0.1)"], [("loss", {})])
    grid = scorer_settings(["min_k:k=0.1,0.5"])
    with pytest.raises(MembenchError, match="ambiguous"):
        compare_labels(["min_k", "loss"], grid)
    assert compare_labels(["min_k:k=0.5", "min_k:k=0.1"], grid)[0] == ["min_k(k=0.5)", "min_k(k=0.1)"]
    with pytest.raises(MembenchError, match="at least two"):
        compare_labels(["loss"], run)


def test_default_set_says_what_it_skips_without_a_pool(monkeypatch):
    from benchmark.evaluate import default_scorer_set

    names, skipped = default_scorer_set(pool_available=False, reference=None)
    assert "dc_pdd" not in names and skipped == []  # DC-PDD needs a frequency table: not a default
    monkeypatch.setattr(attacks, "FEATURE_SCORERS", (*attacks.FEATURE_SCORERS, "recall"))  # one that needs a pool
    names, skipped = default_scorer_set(pool_available=False, reference=None)
    assert "recall" not in names and [s["scorer"] for s in skipped] == ["recall"]
    assert "pool" in skipped[0]["reason"] and "--pool" in skipped[0]["fix"]
    names, skipped = default_scorer_set(pool_available=True, reference="demo/neox-tiny-ref")
    assert "recall" in names and names[-1] == "reference" and skipped == []


def test_blind_auc_is_read_from_membench_home_when_the_results_folder_has_none(tmp_path, monkeypatch):
    from benchmark.home import diagnostics_file
    from benchmark.evaluate import best_blind_auc

    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    results = tmp_path / "results"
    assert best_blind_auc(results, "demo/pydoc") is None
    home_file = diagnostics_file("demo/pydoc")
    home_file.parent.mkdir(parents=True)
    home_file.write_text(json.dumps({"blind_auc": 0.61, "subject": {"content_hash": "abc"}}))
    assert best_blind_auc(results, "demo/pydoc", "abc") == 0.61
    assert best_blind_auc(results, "demo/pydoc", "another version") is None  # diagnosed on other content
    local = diagnostics_file("demo/pydoc", results)
    local.parent.mkdir(parents=True)
    local.write_text(json.dumps({"blind_auc": 0.7}))
    assert best_blind_auc(results, "demo/pydoc", "abc") == 0.7  # the results folder's own copy first


@pytest.mark.slow
def test_pool_that_overlaps_the_split_is_refused(tmp_path):
    import pandas as pd

    from benchmark import suite
    from benchmark.errors import MembenchError
    split = suite.ensure(targets.DEMO_SPLIT)
    bad = tmp_path / "pool.parquet"
    pd.DataFrame({"text": split.samples["text"].tolist()[:3] + ["an unrelated text"]}).to_parquet(bad)
    targets.ensure_demo_target(progress=False)
    with pytest.raises(MembenchError, match="shares 3 text"):
        run(RunSpec.build("demo/neox-tiny", targets.DEMO_SPLIT, ["dc_pdd:frequency=pool"], results_dir=tmp_path, progress=False,
                          pool=bad))


@pytest.mark.slow(needs=DEMO_TARGETS)
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


@pytest.mark.slow(needs=DEMO_TARGETS)
def test_two_settings_of_one_scorer_keep_their_own_records(demo_run):
    from benchmark.results.gate import validate_dir

    out, by_name = demo_run
    first = run(RunSpec.build("demo/neox-tiny", targets.DEMO_SPLIT, ["min_k:k=0.1"], results_dir=out,
                              progress=False)).records
    again = run(RunSpec.build("demo/neox-tiny", targets.DEMO_SPLIT, ["min_k:k=0.2", "min_k:k=0.25"], results_dir=out,
                              progress=False)).records
    assert [r["scorer"]["name"] for r in first + again] == ["min_k(k=0.1)", "min_k", "min_k(k=0.25)"]
    scan = validate_dir(out)
    assert scan.ok, [str(r) for r in scan.rejected]
    names = [rec["scorer"]["name"] for _, rec in scan.records]
    assert names.count("min_k(k=0.1)") == 1 and names.count("min_k") == 1 and names.count("min_k(k=0.25)") == 1
    assert again[0]["metrics"]["auc"] == by_name["min_k"]["metrics"]["auc"]


@pytest.mark.slow(needs=DEMO_TARGETS)
def test_a_grid_is_scored_from_one_cached_pass(demo_run):
    out, by_name = demo_run
    report = run(RunSpec.build("demo/neox-tiny", targets.DEMO_SPLIT, ["min_k:k=0.05,0.2,0.5"], results_dir=out,
                               progress=False))
    records = report.records
    assert report.usage["forward_passes"] == 0
    assert [r["scorer"]["name"] for r in records] == ["min_k(k=0.05)", "min_k", "min_k(k=0.5)"]
    assert [r["scorer"]["params"] for r in records] == [{"k": 0.05}, {"k": 0.2}, {"k": 0.5}]
    assert len({r["per_sample"]["file"] for r in records}) == 3


@pytest.mark.slow(needs=DEMO_TARGETS)
def test_cli_compare_uses_the_records_of_this_run(demo_run, capsys):
    from benchmark import metrics
    from benchmark.cli import main

    out, by_name = demo_run
    # the results folder holds a default min_k from the module run; --compare must use k=0.1
    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "min_k:k=0.1",
                 "--results-dir", str(out), "--compare", "loss", "min_k", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    by_run = {r["scorer"]["name"]: r for r in payload["records"]}
    assert set(by_run) == {"min_k(k=0.1)", "loss"}  # loss was added to the run
    (pair,) = payload["comparison"]["pairs"]
    assert (pair["a"], pair["b"], pair["n_paired"]) == ("loss", "min_k(k=0.1)", 390)
    assert pair["auc_difference"] == pytest.approx(by_run["loss"]["metrics"]["auc"]
                                                   - by_run["min_k(k=0.1)"]["metrics"]["auc"])
    assert pair["ci95"][0] <= pair["auc_difference"] <= pair["ci95"][1]
    assert pair["bootstrap"] == {"resamples": metrics.bootstrap.N_RESAMPLES, "seed": 0, "stratified": True,
                                 "paired": True}
    assert pair["p_holm"] == pair["p_value"]  # one pair: nothing to adjust


@pytest.mark.slow(needs=DEMO_TARGETS)
def test_cli_compare_of_several_gives_every_pair_holm_adjusted(demo_run, capsys):
    from benchmark.cli import main
    from benchmark.metrics import holm

    out, _ = demo_run
    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "loss",
                 "--results-dir", str(out), "--compare", "loss", "zlib", "min_k", "--json"]) == 0
    c = json.loads(capsys.readouterr().out)["comparison"]
    assert [(p["a"], p["b"]) for p in c["pairs"]] == [("loss", "zlib"), ("loss", "min_k"), ("zlib", "min_k")]
    assert c["correction"]["method"] == "holm" and c["correction"]["family_size"] == 3
    assert [p["p_holm"] for p in c["pairs"]] == holm([p["p_value"] for p in c["pairs"]])
    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "loss",
                 "--results-dir", str(out), "--compare", "loss", "zlib", "min_k"]) == 0
    text = capsys.readouterr().out
    assert "p (Holm)" in text and "Holm-adjusted over 3 pair(s)" in text
    if any(p["p_value"] == 0 for p in c["pairs"]):  # loss vs zlib on the demo: every resample agrees
        assert "< 0.001" in text
    assert " 0.0 " not in text and "p = 0 " not in text


def test_a_bootstrap_p_of_zero_prints_below_its_resolution():
    from benchmark.commands.run import p_text

    assert p_text(0.0, 0.001) == "< 0.001" and p_text(0.052, 0.001) == "0.052" and p_text(0.002, 0.001) == "0.002"


@pytest.mark.slow
def test_default_run_on_a_split_without_pool_reports_what_it_skipped(capsys, monkeypatch):
    from benchmark.cli import main

    targets.ensure_demo_target(progress=False)
    control = "control/null/demo/pydoc-nonmembers"  # no pool.parquet
    monkeypatch.setattr(attacks, "FEATURE_SCORERS", (*attacks.FEATURE_SCORERS, "recall"))  # one that needs a pool
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        report = run(RunSpec.build("demo/neox-tiny", control, results_dir=out, progress=False))
        assert "recall" not in {r["scorer"]["name"] for r in report.records}
        assert [s["scorer"] for s in report.skipped] == ["recall"]
        assert main(["run", "--target", "demo/neox-tiny", "--split", control, "--results-dir", out]) == 0
        assert "skipped recall: needs a declared non-member pool" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--scorer", "min_k:k=5"], "k must be in (0, 1]"),
    (["--scorer", "min_k:k"], "is not key=value"),
    (["--batch-tokens", "0"], "must be positive"),
    (["--reference", "nope"], "unknown target"),
    (["--scorer", "min_k:q=1"], "min_k accepts: k"),
    (["--target-name", "x"], "--target-name names a local model directory"),
])
def test_cli_run_bad_input_is_one_line_error(argv, message, capsys):
    from benchmark.cli import main

    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
