"""The `fit` capability end to end on a tiny target built from a config: what fit() and
score() receive (calibration rows and labels only; the evaluated rest only), memorizers gain
nothing, every other scorer recomputed on the same rest, the metered budget, and every bad
input as one line with nothing published."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fit_helpers import SPLIT, TARGET, TEST_SCORERS, Spy, make_env

from benchmark.results.gate import publish, validate_dir
from benchmark.site import build_site
from benchmark import results, suite
from benchmark.attacks.registry import register, unregister
from benchmark.cli import main
from benchmark.errors import MembenchError
from benchmark.evaluate import MeteredModelAccess, RunSpec, run

@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A temporary MEMBENCH_HOME with the planted split, a tiny chat target and one without a
    chat template, and the test scorers registered."""
    with pytest.MonkeyPatch.context() as mp:
        env = make_env(tmp_path_factory, mp)
        for cls in TEST_SCORERS:
            register(cls)
        try:
            yield env
        finally:
            for cls in TEST_SCORERS:
                unregister(cls.name)


def _run(env, scorers, out, *, target="chat", **kw):
    return run(RunSpec.build(str(env[target]), SPLIT, scorers, results_dir=out, progress=False, target_name=TARGET,
                             **kw)).records


def _labels(env):
    split = env["split"]
    return split.labels()


def test_fit_sees_calibration_rows_and_labels_only_and_score_the_rest_only(env, tmp_path):
    out = tmp_path / "r"
    records = _run(env, ["test_fit_spy", "loss"], out, calibration="cal10")
    subset = suite.calibration.select(env["split"], "cal10")
    seen, labels = Spy.seen, _labels(env)
    assert set(seen["fit_uids"]) == set(subset.calibration) and len(seen["fit_uids"]) == len(subset.calibration)
    assert seen["fit_labels"] == labels.reindex(seen["fit_uids"]).tolist()  # exactly their own labels
    assert seen["fit_features"] == len(subset.calibration)
    assert set(seen["score_uids"]) == set(subset.rest) and not set(seen["score_uids"]) & set(seen["fit_uids"])
    assert seen["score_features"] == len(subset.rest)
    spy = next(r for r in records if r["scorer"]["name"] == "test_fit_spy")
    path = results.record_path(out, SPLIT, TARGET, "test_fit_spy", subset="cal10")
    assert sorted(results.read_scores(path, spy).index) == sorted(subset.rest)  # no calibration sample evaluated
    assert spy["evaluation_subset"]["name"] == "cal10" and spy["evaluation_subset"]["n"] == len(subset.rest)
    assert spy["fit"]["subset"] == "cal10" and spy["fit"]["n_calibration"] == len(subset.calibration)
    assert spy["counts"]["n_samples"] == len(subset.rest)
    # the other scorer: its whole-split record, and its record on the same rest
    loss_rest = results.read(results.record_path(out, SPLIT, TARGET, "loss", subset="cal10"))
    whole = results.read_scores(results.record_path(out, SPLIT, TARGET, "loss"))
    on_rest = results.read_scores(results.record_path(out, SPLIT, TARGET, "loss", subset="cal10"), loss_rest)
    assert sorted(on_rest.index) == sorted(subset.rest)
    from sklearn.metrics import roc_auc_score

    rest = list(subset.rest)
    assert loss_rest["metrics"]["auc"] == pytest.approx(roc_auc_score(labels.reindex(rest), whole.reindex(rest)))
    assert loss_rest["evaluation_subset"]["rest_sha256"] == spy["evaluation_subset"]["rest_sha256"]
    assert loss_rest["evaluation_subset"]["derived_from"]["per_sample_sha256"] == \
        results.read(results.record_path(out, SPLIT, TARGET, "loss"))["per_sample"]["sha256"]
    scan = validate_dir(out)
    assert scan.ok and len(scan.recomputed) == len(scan.records) == 3


@pytest.mark.parametrize("subset", ["cal10", "cal80"])
def test_a_memorizer_of_calibration_labels_gains_nothing_on_the_rest(env, tmp_path, subset):
    (record,) = _run(env, ["test_fit_memorizer"], tmp_path / "r", calibration=subset)
    scores = results.read_scores(results.record_path(tmp_path / "r", SPLIT, TARGET, "test_fit_memorizer",
                                                     subset=subset), record)
    assert (scores == 0.5).all()  # it recognizes no evaluated text by uid, text or 13-gram
    assert record["metrics"]["auc"] == 0.5


def _nothing_published(out):
    return not out.exists() or not list(out.rglob("*.json"))


@pytest.mark.parametrize("argv, says", [
    (["--scorer", "loss", "--scorer", "test_fit_spy", "--calibration", "cal8"], "unknown calibration subset 'cal8'"),
    (["--scorer", "loss", "--scorer", "test_fit_raises"], "fit() raised ZeroDivisionError: the scorer divided by zero"),
    (["--scorer", "loss", "--scorer", "test_fit_peeks:how=input"], "asked for labels outside fit()"),
    (["--scorer", "loss", "--scorer", "test_fit_peeks:how=kept"], "asked for labels outside fit()"),
    (["--scorer", "loss", "--scorer", "mia_tuner:epochs=3,num_virtual_tokens=4", "--fit-budget", "steps=2"],
     "exceeded its fit budget: steps would reach 3, over the cap of 2"),
    (["--scorer", "mia_tuner:epochs=1,num_virtual_tokens=4", "--fit-budget", "forward_tokens=100"],
     "exceeded its fit budget: forward tokens"),
    (["--scorer", "mia_tuner:epochs=1", "--fit-budget", "steps=-1"], "--fit-budget: steps must be a positive number"),
    (["--scorer", "mia_tuner:epochs=1", "--fit-budget", "epochs=2"], "--fit-budget: 'epochs=2' is not one of"),
])
def test_bad_input_is_one_line_and_publishes_nothing(env, tmp_path, capsys, argv, says):
    out = tmp_path / "r"
    code = main(["run", "--target", str(env["chat"]), "--target-name", TARGET, "--split", SPLIT,
                 "--results-dir", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert _one_error_line(err, says)
    assert _nothing_published(out)


def _one_error_line(err: str, says: str) -> bool:
    """The error is the last line of stderr (progress bars of model loading may precede it),
    the only one from membench, and no traceback."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert lines and lines[-1].startswith("membench: error: ") and says in lines[-1], err
    assert sum(line.startswith("membench:") for line in lines) == 1 and "Traceback" not in err, err
    return True


def test_aligned_mia_tuner_needs_a_chat_template(env, tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["run", "--target", str(env["plain"]), "--target-name", TARGET, "--split", SPLIT,
                 "--results-dir", str(out), "--scorer", "mia_tuner_aligned:epochs=1,num_virtual_tokens=4"])
    assert code == 2 and _one_error_line(capsys.readouterr().err, "has no chat template")
    assert _nothing_published(out)


def test_mia_tuner_trains_within_its_budget_on_a_tiny_target(env, tmp_path):
    from benchmark.attacks import FitBudget

    budget = FitBudget(steps=50, forward_tokens=400_000, backward_tokens=400_000, seconds=3600)
    records = _run(env, ["mia_tuner:epochs=3,batch_size=4,num_virtual_tokens=6,max_train_samples=24", "zlib"],
                   tmp_path / "r", fit_budget=budget)
    tuner = records[0]
    assert tuner["scorer"]["name"] == "mia_tuner(batch_size=4,epochs=3,max_train_samples=24,num_virtual_tokens=6)"
    assert tuner["evaluation_subset"]["name"] == "cal80"  # its own default: the paper's 80/20 protocol
    usage = tuner["fit"]["usage"]
    assert usage["training_steps"] == 3 * 3  # 12 pairs per class in batches of 4, three epochs
    assert 0 < usage["forward_tokens"] <= budget.forward_tokens
    assert usage["backward_tokens"] == usage["forward_tokens"]  # every training token back-propagated once
    assert usage["wall_seconds"] <= budget.seconds
    assert tuner["fit"]["budget"] == budget.as_dict()
    assert tuner["provenance"]["usage"]["soft_prompt_forward_tokens"] > 0  # the scoring pass on the rest
    assert tuner["scorer"]["details"]["steps"] == 9
    # zlib is also recomputed on the same 20% the tuner was scored on
    zlib_rest = results.read(results.record_path(tmp_path / "r", SPLIT, TARGET, "zlib", subset="cal80"))
    assert zlib_rest["evaluation_subset"]["rest_sha256"] == tuner["evaluation_subset"]["rest_sha256"]
    assert validate_dir(tmp_path / "r").ok


def test_an_unconverged_mia_tuner_fit_is_flagged_with_its_numbers(env, tmp_path):
    """A learning rate too small to move the prompt: the objective stays flat, and the record's
    fit block says the fit did not converge (the published MIA-Tuner was LOSS in disguise)."""
    (flat,) = _run(env, ["mia_tuner:epochs=4,batch_size=4,num_virtual_tokens=4,max_train_samples=16,"
                         "learning_rate=1e-12"], tmp_path / "flat")
    conv = flat["fit"]["convergence"]
    assert conv["converged"] is False and conv["learned"] is False and conv["epochs"] == 4
    assert abs(conv["relative_drop"]) < 0.05 and conv["objective_first"] == pytest.approx(conv["objective_last"],
                                                                                          rel=0.05)
    assert "learned" in conv["rule"] and validate_dir(tmp_path / "flat").ok
    # the gate flags it and writes the training facts; the site shows the flag with the row
    publish(tmp_path / "flat")
    gated = results.read(results.record_path(tmp_path / "flat", SPLIT, TARGET, flat["scorer"]["name"], subset="cal80"))
    (flag,) = gated["display"]["flags"]
    assert flag["tag"] == "not converged" and str(conv["epochs"]) in flag["why"]
    assert gated["display"]["method_details"]["training"].startswith("4 epochs (the authors': 50)")
    report = build_site(tmp_path / "flat", tmp_path / "site")
    assert not report.rejected
    (page,) = (tmp_path / "site" / "scorer").glob("mia_tuner*.html")
    html = page.read_text()
    assert 'class="tag warn flag"' in html and "the fit did not converge" in html and "How each result was run" in html
    split_page = next((tmp_path / "site" / "split").glob("*.html")).read_text()
    assert ">not converged</span>" in split_page  # the row's tag on the split's table


def test_mia_tuner_defaults_are_the_authors():
    """wjfu99/MIA-Tuner exp_scripts/main_exp.sh: 50 virtual tokens, 50 epochs, batches of 8 + 8,
    lr 5e-4, 160 training texts (membench published 10 epochs before, an unconverged fit)."""
    from benchmark import attacks

    for name in ("mia_tuner", "mia_tuner_aligned"):
        tuner = attacks.get_scorer(name)
        assert (tuner.num_virtual_tokens, tuner.epochs, tuner.batch_size, tuner.learning_rate,
                tuner.max_train_samples) == (50, 50, 8, 5e-4, 160)


def test_convergence_rule_by_hand():
    from benchmark.attacks.convergence import convergence_block

    assert convergence_block([1.0, 0.8, 0.6, 0.59, 0.59])["converged"]  # 41% drop, the last two within 1%
    flat = convergence_block([0.738, 0.737, 0.736, 0.735, 0.734])  # the published tuner: 0.5% drop
    assert not flat["converged"] and not flat["learned"] and flat["settled"]
    moving = convergence_block([1.0, 0.8, 0.6, 0.4])  # still falling fast: learned, not settled
    assert moving["learned"] and not moving["settled"] and not moving["converged"]
    assert not convergence_block([1.0])["converged"]


def test_aligned_mia_tuner_takes_a_chat_template_from_a_file(env, tmp_path):
    from fit_helpers import CHAT_TEMPLATE

    from benchmark.hashing import sha256_file

    template = tmp_path / "chat.jinja"
    template.write_text(CHAT_TEMPLATE)
    (record,) = run(RunSpec.build(str(env["plain"]), SPLIT, [f"mia_tuner_aligned:epochs=1,batch_size=4,"
                                                            f"num_virtual_tokens=4,max_train_samples=16,"
                                                            f"chat_template={template}"],
                                  results_dir=tmp_path / "r", progress=False, target_name=TARGET,
                                  calibration="cal10")).records
    assert record["scorer"]["details"]["chat_template"] == {"file": "chat.jinja", "sha256": sha256_file(template)}
    assert record["fit"]["usage"]["training_steps"] == 2
    with pytest.raises(MembenchError, match="is not a file"):
        run(RunSpec.build(str(env["plain"]), SPLIT, [f"mia_tuner_aligned:chat_template={tmp_path / 'missing.jinja'}"],
                          results_dir=tmp_path / "r2", progress=False, target_name=TARGET))


def test_aligned_mia_tuner_scores_a_probability_of_yes(env, tmp_path):
    (record,) = _run(env, ["mia_tuner_aligned:epochs=1,batch_size=4,num_virtual_tokens=4,max_train_samples=16"],
                     tmp_path / "r", calibration="cal10")
    scores = results.read_scores(results.record_path(tmp_path / "r", SPLIT, TARGET, record["scorer"]["name"],
                                                     subset="cal10"), record)
    assert ((scores > 0) & (scores < 1)).all()
    assert record["fit"]["usage"]["training_steps"] == 2


def test_con_recall_picks_gamma_on_the_calibration_subset(env, tmp_path):
    from benchmark.attacks.con_recall import GAMMAS

    (record,) = _run(env, ["con_recall:shots=1"], tmp_path / "r")
    details = record["scorer"]["details"]
    assert record["evaluation_subset"]["name"] == "cal10"
    assert details["gamma"] in GAMMAS and details["gamma_chosen_on_calibration"]
    aucs = details["calibration_auc_by_gamma"]
    assert aucs[str(details["gamma"])] == max(v for v in aucs.values() if v == v)
    n_cal = record["evaluation_subset"]["n_calibration"]
    assert details["calibration_texts_for_gamma"] == n_cal - 2  # the two prefix texts are left out
    # fit's forward passes count against the budget: two conditional passes over those texts
    assert record["fit"]["usage"]["forward_tokens"] > 0 and record["fit"]["usage"]["training_steps"] == 0


def test_threshold_calibration_reports_its_operating_point_on_the_rest(env, tmp_path):
    out = tmp_path / "r"
    records = _run(env, ["calibrated:base=min_k:k=0.5,target_fpr=0.2", "min_k:k=0.5"], out, calibration="cal80")
    cal_rec = records[0]
    assert cal_rec["scorer"]["name"] == "calibrated(base=min_k:k=0.5,target_fpr=0.2)"
    point = cal_rec["operating_point"]
    assert point["threshold"] == 0.0 and point["target_fpr"] == 0.2 and point["calibration"]["fpr"] <= 0.2
    labels = _labels(env)
    scores = results.read_scores(results.record_path(out, SPLIT, TARGET, cal_rec["scorer"]["name"], subset="cal80"),
                                 cal_rec)
    y = labels.reindex(scores.index).to_numpy()
    member = scores.to_numpy() >= 0
    assert point["evaluated"]["tpr"] == pytest.approx(member[y == 1].mean())
    assert point["evaluated"]["fpr"] == pytest.approx(member[y == 0].mean())
    # a shift of min_k: the same ranking, so the same AUC as min_k on the same rest
    base_rest = results.read(results.record_path(out, SPLIT, TARGET, "min_k(k=0.5)", subset="cal80"))
    assert cal_rec["metrics"]["auc"] == pytest.approx(base_rest["metrics"]["auc"])
    # the chosen threshold is min_k's on the calibration subset
    whole = results.read_scores(results.record_path(out, SPLIT, TARGET, "min_k(k=0.5)"))
    subset = suite.calibration.select(env["split"], "cal80")
    cal_scores = whole.reindex(list(subset.calibration)).to_numpy()
    cal_y = labels.reindex(list(subset.calibration)).to_numpy()
    t = point["base_threshold"]
    assert ((cal_scores >= t)[cal_y == 0]).mean() <= 0.2
    assert ((cal_scores >= t)[cal_y == 1]).mean() == pytest.approx(point["calibration"]["tpr"])
    assert validate_dir(out).ok


def test_records_on_a_rest_are_checked_against_the_subset(env, tmp_path):
    out = tmp_path / "r"
    _run(env, ["test_fit_spy", "loss"], out, calibration="cal10")
    assert validate_dir(out).ok
    path = results.record_path(out, SPLIT, TARGET, "loss", subset="cal10")
    record = json.loads(path.read_text())
    # a calibration sample slipped into the evaluated rows is refused, naming the field
    subset = suite.calibration.select(env["split"], "cal10")
    per_sample = path.parent / record["per_sample"]["file"]
    whole = results.read_scores(results.record_path(out, SPLIT, TARGET, "loss"))
    leaked = pd.DataFrame({"uid": list(subset.rest) + [subset.calibration[0]],
                           "score": whole.reindex(list(subset.rest) + [subset.calibration[0]]).tolist()})
    leaked.to_parquet(per_sample, index=False)
    from benchmark.hashing import sha256_file

    record["per_sample"]["sha256"] = sha256_file(per_sample)
    path.write_text(json.dumps(record))
    scan = validate_dir(out)
    (refused,) = scan.rejected
    assert refused.field == "per_sample.file" and "calibration sample" in refused.message
    # a record claiming another subset definition is refused too
    record = json.loads(path.read_text())
    record["evaluation_subset"]["calibration_sha256"] = "0" * 64
    path.write_text(json.dumps(record))
    assert validate_dir(out).rejected[0].field == "evaluation_subset.calibration_sha256"


def test_a_run_keeps_records_on_a_rest_up_to_date_and_derive_adds_them(env, tmp_path, capsys):
    out = tmp_path / "r"
    _run(env, ["test_fit_spy"], out, calibration="cal80")
    _run(env, ["zlib"], out)  # a later run without a fit scorer: zlib is recomputed on cal80's rest too
    assert results.record_path(out, SPLIT, TARGET, "zlib", subset="cal80").is_file()
    _run(env, ["loss"], out)
    results.record_path(out, SPLIT, TARGET, "loss", subset="cal80").unlink()
    assert main(["calibration", "derive", SPLIT, "--results-dir", str(out), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)["written"]["cal80"]
    assert len(written) == 2 and results.record_path(out, SPLIT, TARGET, "loss", subset="cal80").is_file()
    assert validate_dir(out).ok


def test_soft_prompt_training_follows_the_exact_gradient_of_the_objective(env):
    """The harness back-propagates d objective / d logprob sent by the scorer: the prompt's
    gradient equals the one autograd gives for the objective computed through the model."""
    import torch

    from benchmark import attacks, targets
    from benchmark.attacks.fit_budget import FitBudget, FitMeter
    from benchmark.attacks.mia_tuner import unaligned_objective

    target = targets.load_target(str(env["chat"]))
    access = MeteredModelAccess(target, granted=("features", "fit"), scorer="t")
    texts = env["split"].samples["text"].tolist()[:6]
    members = torch.tensor([True, True, True, False, False, False])
    with access.fitting(FitMeter(FitBudget(), "t")):
        prompt = access.soft_prompt(5, "", learning_rate=1e-2, total_steps=10, seed=0)
        seqs = access.tokenize(texts)
        values, _ = prompt.logprobs(seqs, train=True)
        lps = [torch.tensor(v, requires_grad=True) for v in values]
        objective = unaligned_objective(torch.stack([-x.mean() for x in lps]), members)
        objective.backward()
        grads = [x.grad.numpy() for x in lps]
        captured = []
        hook = prompt.encoder.embedding.weight.register_hook(lambda g: captured.append(g.clone()))
        before = prompt.encoder.embedding.weight.detach().clone()
        prompt.step(grads)
        # the same objective straight through the model, from the same prompt
        with torch.no_grad():
            prompt.encoder.embedding.weight.copy_(before)
        direct = prompt._forward(seqs, None)[0]
        unaligned_objective(torch.stack([-x.mean() for x in direct]), members).backward()
        hook.remove()
        assert len(captured) == 2 and torch.allclose(captured[0], captured[1], rtol=1e-4, atol=1e-7)
        assert access.meter.counts["steps"] == 1
    with pytest.raises(Exception, match="outside fit"):
        prompt.step(grads)
