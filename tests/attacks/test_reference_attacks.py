"""Reference attacks on fine-tuned targets: LiRA and RMIA with shadow fine-tunes, EZ-MIA with the
base as reference.

Formulas against transcriptions of the reference code (Carlini et al.'s ``plot.py``, Privacy
Meter's ``run_rmia``, EZ-MIA's ``error_zone_pos_neg_sum_ratio``) and hand computations; then each
attack on a tiny fully fine-tuned target, where it must find the members (AUC > 0.5), record its
cost, and reuse its shadows on a second run.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from finetune_helpers import make_base, module_home, write_recipes

from benchmark import finetune, suite, targets
from benchmark.attacks.ezmia import ez_score
from benchmark.attacks.lira import lira_scores, logit_confidence
from benchmark.attacks.rmia import rmia_scores, tune_offline_a
from benchmark.errors import MembenchError
from benchmark.evaluate import RunSpec, run
from benchmark.finetune import pools
from benchmark.finetune.build import shadow_keep
from benchmark.results.naming import scorer_label
from benchmark.suite.store import make_uid

# -- transcriptions of the reference code ----------------------------------------------------------


def carlini_generate_ours(keep, scores, check_keep, check_scores, in_size=100000, out_size=100000,
                          fix_variance=False):
    """tensorflow/privacy research/mi_lira_2021/plot.py, ``generate_ours`` (lower = member)."""
    dat_in, dat_out = [], []
    for j in range(scores.shape[1]):
        dat_in.append(scores[keep[:, j], j, :])
        dat_out.append(scores[~keep[:, j], j, :])
    in_size = min(min(map(len, dat_in)), in_size)
    out_size = min(min(map(len, dat_out)), out_size)
    dat_in = np.array([x[:in_size] for x in dat_in])
    dat_out = np.array([x[:out_size] for x in dat_out])
    mean_in = np.median(dat_in, 1)
    mean_out = np.median(dat_out, 1)
    if fix_variance:
        std_in = np.std(dat_in)
        std_out = np.std(dat_in)
    else:
        std_in = np.std(dat_in, 1)
        std_out = np.std(dat_out, 1)
    prediction, answers = [], []
    for ans, sc in zip(check_keep, check_scores):
        pr_in = -scipy.stats.norm.logpdf(sc, mean_in, std_in + 1e-30)
        pr_out = -scipy.stats.norm.logpdf(sc, mean_out, std_out + 1e-30)
        score = pr_in - pr_out
        prediction.extend(score.mean(1))
        answers.extend(ans)
    return prediction, answers


def privacy_meter_run_rmia(target_signals, ref_signals, ref_memberships, z_target_signals, z_ref_signals, offline_a,
                           num_reference_models):
    """privacytrustlab/ml_privacy_meter modules/mia/attacks/rmia.py, ``run_rmia`` (k > 1 path)."""

    def get_out_ref_signals(signals, memberships, num):
        out_signals = signals * ~memberships
        return -np.sort(-out_signals, axis=1)[:, :num]

    mean_out_x = np.mean(get_out_ref_signals(ref_signals, ref_memberships, num_reference_models), axis=1)
    mean_x = (1 + offline_a) / 2 * mean_out_x + (1 - offline_a) / 2
    prob_ratio_x = target_signals.ravel() / mean_x
    z_out = get_out_ref_signals(z_ref_signals, np.zeros_like(z_ref_signals).astype(bool), num_reference_models)
    mean_z = (1 + offline_a) / 2 * np.mean(z_out, axis=1) + (1 - offline_a) / 2
    prob_ratio_z = z_target_signals.ravel() / mean_z
    ratios = prob_ratio_x[:, np.newaxis] / prob_ratio_z
    return np.average(ratios > 1.0, axis=1)


def ez_reference(tgt_lp, ref_lp, top1, target_ids, mask, ignore_bos=True, min_tokens=2):
    """JetBrains-Research/ez-mia ``error_zone_pos_neg_sum_ratio``, in numpy."""
    mask = np.asarray(mask, float).copy()
    if ignore_bos and mask.size:
        mask[0] = 0.0
    error = (np.asarray(top1) != np.asarray(target_ids)) & (mask > 0.5)
    if error.sum() < min_tokens:
        return 0.0
    d = (np.asarray(tgt_lp) - np.asarray(ref_lp))[error]
    pos, neg = d[d > 0].sum(), np.abs(d[d < 0]).sum()
    if neg == 0:
        return 0.0
    value = float(pos / (neg + 1e-12))
    return 0.0 if not (value == value) or value < 0 else value


# -- formulas --------------------------------------------------------------------------------------


def test_shadow_keep_puts_every_text_in_exactly_half_of_the_shadows():
    keep = shadow_keep(37, 8, seed=3)
    assert keep.shape == (8, 37) and (keep.sum(0) == 4).all()
    assert (shadow_keep(37, 8, seed=3) == keep).all() and not (shadow_keep(37, 8, seed=4) == keep).all()
    with pytest.raises(MembenchError, match="even number"):
        shadow_keep(10, 3)


@pytest.mark.parametrize("fix_variance", [False, True])
def test_online_lira_is_the_authors_generate_ours(fix_variance):
    rng = np.random.default_rng(0)
    n_models, n = 8, 50
    keep = shadow_keep(n, n_models, seed=1)
    shadow = rng.normal(size=(n_models, n)) + keep * 1.5
    target = rng.normal(size=n) + 0.7
    prediction, _ = carlini_generate_ours(keep, shadow[:, :, None], [np.ones(n, bool)], target[None, :, None],
                                          fix_variance=fix_variance)
    ours = lira_scores(target, shadow, keep, online=True, global_variance=fix_variance)
    assert np.allclose(ours, -np.asarray(prediction), rtol=1e-10, atol=1e-10)  # theirs: lower = member


def test_offline_lira_is_the_papers_one_sided_test():
    shadow = np.array([[1.0, 2.0], [3.0, 0.0], [5.0, 1.0], [2.0, 4.0]])
    keep = np.array([[True, False], [False, True], [False, False], [True, True]])
    target = np.array([4.0, 3.0])
    # OUT shadows: text 0 -> (3, 5): median 4, std 1; text 1 -> (2, 1): median 1.5, std 0.5
    got = lira_scores(target, shadow, keep, online=False, global_variance=False)
    assert np.allclose(got, [(4 - 4) / 1, (3 - 1.5) / 0.5])
    # a monotone transform of Lambda = Pr[Z < phi], Z ~ N(mu_out, sigma_out^2)
    lam = scipy.stats.norm.cdf(target, [4.0, 1.5], [1.0, 0.5])
    assert np.argsort(lam).tolist() == np.argsort(got).tolist()
    glob = lira_scores(target, shadow, keep, online=False, global_variance=True)
    assert np.allclose(glob, (target - [4.0, 1.5]) / np.std([3.0, 5.0, 2.0, 1.0]))
    assert np.allclose(logit_confidence(np.log([0.25, 0.5])), np.log([1 / 3, 1.0]))


def test_rmia_is_privacy_meters_run_rmia_and_a_hand_computation():
    rng = np.random.default_rng(2)
    k, n, m = 4, 30, 25
    keep = shadow_keep(n, k, seed=0)
    p_x = rng.uniform(0.05, 0.6, size=(k, n)) * (1 + 0.5 * keep)
    p_tx = rng.uniform(0.05, 0.9, size=n)
    p_z = rng.uniform(0.05, 0.6, size=(k // 2, m))  # (Privacy Meter keeps the top half for z: give it just that)
    p_tz = rng.uniform(0.05, 0.6, size=m)
    ours = rmia_scores(p_tx, p_x, keep, p_tz, p_z, offline_a=0.3)
    theirs = privacy_meter_run_rmia(p_tx, p_x.T, keep.T, p_tz, p_z.T, 0.3, k // 2)
    assert np.allclose(ours, theirs)
    # by hand, one text and two population texts, a = 0.5, online and offline
    got = rmia_scores(np.array([0.4]), np.array([[0.2], [0.6]]), np.array([[False], [True]]), np.array([0.3, 0.1]),
                      np.array([[0.3, 0.2], [0.1, 0.2]]), offline_a=0.5)
    # p(x) = 0.75 * 0.2 + 0.25 = 0.4 -> ratio 1; p(z) = 0.75 * (0.2, 0.2) + 0.25 = 0.4 -> ratios 0.75, 0.25
    assert got.tolist() == [1.0]
    online = rmia_scores(np.array([0.4]), np.array([[0.2], [0.6]]), np.array([[False], [True]]), np.array([0.3, 0.1]),
                         np.array([[0.3, 0.2], [0.1, 0.2]]), online=True, gamma=1.5)
    # p(x) = 0.4 -> 1.0; p(z) = (0.2, 0.2) -> 1.5, 0.5: LR = 0.67, 2.0 -> one of two above 1.5
    assert online.tolist() == [0.5]


def test_rmia_tunes_offline_a_on_a_paired_shadow():
    # language-model signals are far below 1: only a = 1 (the references alone) separates members
    rng = np.random.default_rng(7)
    k, n, m = 4, 60, 40
    keep = shadow_keep(n, k, seed=2)
    difficulty = rng.uniform(0.001, 0.02, size=n)  # per text, how likely any model finds it
    p_x = difficulty * np.exp(0.5 * keep + 0.05 * rng.normal(size=(k, n)))
    p_z = rng.uniform(0.001, 0.02, size=m) * np.exp(0.05 * rng.normal(size=(k, m)))
    a, aucs = tune_offline_a(p_x, keep, p_z)
    assert a == 1.0 and aucs["1.0"] > 0.9 and aucs["0.0"] < aucs["1.0"] and len(aucs) == 11
    with pytest.raises(MembenchError, match="n_shadows >= 4"):
        tune_offline_a(p_x[:2], keep[:2], p_z[:2])


def test_ez_score_is_the_reference_kernel():
    # the hand-computed case: errors at positions 1, 2, 4 (0 dropped as the first prediction)
    hit = np.array([True, False, False, True, False])
    t_lp = np.array([-3.0, -1.0, -2.0, -0.1, -4.0])
    r_lp = np.array([-2.0, -2.0, -1.0, -0.2, -1.0])
    score, size = ez_score(t_lp, r_lp, hit)
    assert size == 3 and score == pytest.approx(1.0 / 4.0)  # deltas +1, -1, -3
    assert ez_score(t_lp[:3], r_lp[:3], np.array([True, False, True]))[0] == 0.0  # one error token < min_tokens
    assert ez_score(-np.ones(4), -2 * np.ones(4), np.zeros(4, bool))[0] == 0.0  # no negative delta
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        ids = rng.integers(0, 4, size=n)
        top1 = rng.integers(0, 4, size=n)
        a, b = rng.normal(size=n), rng.normal(size=n)
        assert ez_score(a, b, top1 == ids)[0] == pytest.approx(ez_reference(a, b, top1, ids, np.ones(n)), abs=1e-12)


# -- on a fine-tuned target ------------------------------------------------------------------------

home = module_home("ref-attacks-home")


@pytest.fixture(scope="module")
def target(home):
    docs = pools.stdlib_docstrings()
    docs = docs[docs["text"].str.split().str.len() <= 40].reset_index(drop=True)
    base = make_base(home / "base", "gpt_neox", docs["text"].tolist())
    pool = home / "pool.parquet"
    docs.to_parquet(pool, index=False)
    entry = {"id": "ref-full", "base": str(base), "pool": {"file": str(pool), "text": "text"}, "method": {"kind": "full"},
             "sizes": {"members": 30, "nonmembers": 30, "reference_pool": 16}, "seed": 2,
             "train": {"epochs": 8, "lr": 3e-3, "batch_size": 8, "block_size": 40}}
    finetune.finetune("ref-full", recipes_file=write_recipes(home / "recipes.yaml", [entry]), progress=False)
    return "ft/ref-full", "finetune/ref-full"


def test_reference_attacks_find_the_members_and_record_their_cost(target, home):
    target_id, split_id = target
    specs = ["lira:n_shadows=2", "lira:n_shadows=2,online=false", "rmia:n_shadows=2,offline_a=1", "ez_mia", "loss"]
    report = run(RunSpec.build(target_id, split_id, specs, results_dir=home / "results", progress=False))
    records = {r["scorer"]["name"]: r for r in report.records}
    rmia = scorer_label("rmia", {"n_shadows": 2, "offline_a": 1.0})
    for name in ("lira(n_shadows=2)", "lira(n_shadows=2,online=false)", rmia, "ez_mia"):
        record = records[name]
        assert record["metrics"]["auc"] > 0.5, (name, record["metrics"]["auc"])
        assert record["scorer"]["details"]["cost"]["wall_seconds"] >= 0
    lira = records["lira(n_shadows=2)"]
    usage = lira["provenance"]["usage"]
    assert usage["shadows_built"] == 2 and usage["shadow_training_steps"] > 0 and usage["shadow_forward_tokens"] > 0
    assert lira["scorer"]["details"]["in_shadows_per_text"] == [1, 1] and len(lira["scorer"]["details"]["shadows"]) == 2
    # the shadows are targets of their own, each trained on its half (its manifest = the keep matrix)
    texts = suite.ensure(split_id).samples["text"].tolist()
    built = finetune.shadow_models(target_id, texts, 2, progress=False)
    assert [s["target"] for s in built] == lira["scorer"]["details"]["shadows"] and all(s["reused"] for s in built)
    keep = shadow_keep(len(texts), 2)
    for k, shadow in enumerate(built):
        assert shadow["trained"] == {make_uid(t) for t, inside in zip(texts, keep[k]) if inside}
        assert targets.get_target(shadow["target"]).extra["split"] is None  # no membership split of their own
    # every later record of the run reused them (built once)
    assert records[rmia]["provenance"]["usage"]["shadows_built"] == 0
    assert records[rmia]["scorer"]["details"]["population"] == 16
    assert records[rmia]["scorer"]["details"]["offline_a"] == 1.0
    ez = records["ez_mia"]["scorer"]["details"]
    assert ez["reference"] and ez["mean_error_zone_tokens"] > 2 and ez["cost"]["reference_forward_tokens"] > 0


def test_shadows_need_a_recipe_target(home):
    with pytest.raises(MembenchError, match="built from a recipe"):
        finetune.shadow_models("demo/neox-tiny", ["a b", "c d"], 2, progress=False)
