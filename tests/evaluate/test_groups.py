"""The ``groups`` capability and user inference (Kandpal et al.) on a per-user fine-tuned target.

A tiny random-weight GPT-NeoX (tokenizer trained on the pool) fine-tuned per user on
standard-library docstrings (a user = a module); user inference scores each user from the
attacker-held texts only, against the base as reference. Also: group-level metrics, records,
recomputation, site, and every wrong group-level output refused with nothing written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from finetune_helpers import module_home
from submission_helpers import write_submission
from finetune_helpers import docs, make_base, pool_file, write_recipes  # noqa: F401  (module fixtures)

from benchmark.results.gate import publish, validate_dir
from benchmark import attacks, finetune, metrics, results, suite
from benchmark.api import group_scores
from benchmark.evaluate import RunSpec, run
from benchmark.errors import MembenchError

home = module_home("groups-home")


def users_recipe(rid: str, base, pool, **over) -> dict:
    entry = {"id": rid, "base": str(base), "pool": {"file": str(pool), "text": "text", "user": "user"},
             "assign": "user", "method": {"kind": "full"}, "seed": 3,
             "sizes": {"members": 14, "nonmembers": 14, "attacker_per_user": 2, "min_user_samples": 6,
                       "reference_pool": 0},
             "train": {"epochs": 8, "lr": 3e-3, "batch_size": 8, "block_size": 64}}
    entry.update(over)
    return entry


@pytest.fixture(scope="module")
def users(home, docs, pool_file):  # noqa: F811
    base = make_base(home / "bases" / "neox", "gpt_neox", docs["text"].tolist())
    file = write_recipes(home / "users.yaml", [users_recipe("users", base, pool_file)])
    finetune.finetune("users", recipes_file=file, progress=False)
    return base


@pytest.fixture(scope="module")
def user_records(home, users):
    seen = {}
    original = attacks.scorer_class("user_inference").score

    def spy(self, inputs):
        seen["uids"], seen["groups"] = list(inputs.uids), list(inputs.groups)
        return original(self, inputs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(attacks.scorer_class("user_inference"), "score", spy)
        records = run(RunSpec.build("ft/users", "finetune/users", ["user_inference", "loss"],
                                    results_dir=home / "results", progress=False)).records
    return records, seen


def test_user_inference_beats_chance_over_users_from_attacker_samples_only(user_records, home):
    records, seen = user_records
    record = records[0]
    assert record["kind"] == "group" and record["scorer"]["name"] == "user_inference"
    assert record["metrics"]["unit"] == "group" and record["metrics"]["n_members"] == 14
    assert record["metrics"]["n_nonmembers"] == 14 and record["counts"]["n_samples"] == 28
    assert record["metrics"]["auc"] > 0.5, record["metrics"]["auc"]
    # the reference is the base by default, and is recorded
    assert record["provenance"]["reference"]["weights_sha256"] == \
        finetune.read_manifest("ft/users")["base"]["weights_sha256"]
    # only attacker-held samples were scored: never a trained (or any split) sample
    manifest = finetune.read_manifest("ft/users")
    assert sorted(seen["uids"]) == sorted(manifest["attacker_uids"])
    assert not set(seen["uids"]) & set(manifest["trained_uids"])
    split = suite.ensure("finetune/users")
    assert not set(seen["uids"]) & set(split.samples["uid"])
    assert record["groups"]["rows"] == "attacker-held" and record["groups"]["n_rows"] == 56
    # per-group scores on disk, one per user, keyed apart from the sample-level records
    path = results.record_path(home / "results", "finetune/users", "ft/users", "user_inference", unit="group")
    assert path.name.startswith("user_inference.groups-") and path.exists()
    scores = results.read_scores(path)
    labels = suite.user_level.labels(split)
    assert sorted(scores.index) == sorted(labels.index)
    assert record["metrics"]["auc"] == pytest.approx(metrics.auc(labels.reindex(scores.index), scores.to_numpy()))
    assert records[1]["scorer"]["name"] == "loss" and "kind" not in records[1]


def test_group_records_are_compared_with_the_group_level_blind_auc(users, home, tmp_path):
    from benchmark import diagnostics

    res = tmp_path / "res"
    diagnostics.write_blind_results("finetune/users", res)
    saved = diagnostics.read_saved("finetune/users", res)
    assert saved["cross_validation"]["grouped"] and saved["verdict_unit"] == "text"
    assert saved["counts"]["analyzed_groups"] == 28 and saved["blind_auc_group"] is not None
    records = run(RunSpec.build("ft/users", "finetune/users", ["user_inference", "loss"], results_dir=res,
                                progress=False)).records
    by_name = {r["scorer"]["name"]: r for r in records}
    group, text = by_name["user_inference"]["metrics"], by_name["loss"]["metrics"]
    assert group["unit"] == "group" and group["best_blind_auc"] == pytest.approx(saved["blind_auc_group"])
    assert group["excess_over_blind"] == pytest.approx(group["auc"] - saved["blind_auc_group"])
    assert text["best_blind_auc"] == pytest.approx(saved["blind_auc"])
    scan = validate_dir(res)
    assert scan.ok, [str(r) for r in scan.rejected]


def test_group_metrics_count_groups_and_mark_unresolvable():
    labels = np.array([1] * 12 + [0] * 12)
    scores = np.arange(24, dtype=float)[::-1]
    summary = metrics.summarize_groups(labels, scores)
    assert summary["auc"] == 1.0 and summary["unit"] == "group" and summary["bootstrap"]["unit"] == "group"
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s = rng.normal(size=24) + labels
    assert metrics.summarize_groups(labels, s)["auc"] == pytest.approx(roc_auc_score(labels, s))
    # 12 non-member groups: 10% allows one false positive, 1% and 0.1% none
    assert summary["tpr_at_fpr"]["0.1"]["resolvable"] and summary["tpr_at_fpr"]["0.1"]["value"] == 1.0
    assert summary["tpr_at_fpr"]["0.01"] == {"value": None, "ci95": None, "resolvable": False}
    with pytest.raises(ValueError):
        metrics.summarize_groups(labels, np.r_[s[:-1], np.nan])


def test_group_records_validate_recompute_and_reach_the_site_and_api(user_records, home, tmp_path):
    scan = validate_dir(home / "results")
    assert scan.ok, [str(r) for r in scan.rejected]
    group_paths = [p for p, r in scan.records if r.get("kind") == "group"]
    assert group_paths and all(p in scan.recomputed for p in group_paths)
    # a tampered per-group score is refused by the recomputation
    bad = tmp_path / "bad"
    import shutil

    shutil.copytree(home / "results", bad)
    path = results.record_path(bad, "finetune/users", "ft/users", "user_inference", unit="group")
    record = results.read(path)
    frame = pd.read_parquet(results.scores_path(path))
    frame = frame.iloc[1:]  # a group missing
    frame.to_parquet(results.scores_path(path), index=False)
    from benchmark.hashing import sha256_file

    record["per_sample"]["sha256"] = sha256_file(results.scores_path(path))
    import json

    path.write_text(json.dumps(record))
    scan = validate_dir(bad)
    assert [r.field for r in scan.rejected] == ["per_sample.file"] and "lacks 1" in scan.rejected[0].message
    # site and API
    from fastapi.testclient import TestClient

    from benchmark.server import create_app
    from benchmark.site import build_site

    out = tmp_path / "site"
    publish(home / "results")  # the publication gate, which the site reads
    build_site(home / "results", out)
    page = (out / "scorer" / "user_inference.html").read_text()
    assert "14 / 14 groups" in page and "finetune/users" in page
    # the per-user view: AUC by contribution and by the outlier measure (the base as reference)
    assert 'id="users"' in page and "AUC by outlier measure" in page
    view = results.read(results.record_path(home / "results", "finetune/users", "ft/users", "user_inference",
                                            unit="group"))["groups"]["per_user_view"]
    assert sum(b["n_members"] + b["n_nonmembers"] for b in view["by_contribution"]) == 28
    assert sum(b["n_members"] + b["n_nonmembers"] for b in view["by_outlier"]) == 28
    finetune_page = (out / "finetune.html").read_text()
    assert 'id="defence-table"' in finetune_page and "user_inference" in finetune_page
    client = TestClient(create_app(results_dir=home / "results", site_dir=out))
    rows = client.get("/api/results", params={"unit": "group"}).json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert len(rows) == 1 and rows[0]["kind"] == "group"


class BadGroups(attacks.Scorer):
    name = "bad_groups_for_test"
    requires = ("features", "groups")

    def __init__(self, mode: str = "per_sample"):
        self.mode = mode
        self.details = {}

    def score(self, inputs):
        ids = inputs.group_ids
        if self.mode == "per_sample":
            return np.zeros(len(inputs.uids))
        if self.mode == "missing":
            return {g: 1.0 for g in ids[1:]}
        if self.mode == "extra":
            return {**{g: 1.0 for g in ids}, "nobody": 2.0}
        return np.r_[np.ones(len(ids) - 1), np.nan]


@pytest.mark.parametrize("mode,message", [("per_sample", "one per sample"), ("missing", "no score for 1 of"),
                                          ("extra", "not among its inputs' groups"), ("nan", "non-finite")])
def test_wrong_group_outputs_are_refused_and_nothing_is_published(user_records, home, tmp_path, mode, message,
                                                                  monkeypatch):
    from benchmark.attacks import registry

    monkeypatch.setitem(registry._SCORERS, BadGroups.name, BadGroups)
    out = tmp_path / "results"
    with pytest.raises(MembenchError, match=message) as err:
        run(RunSpec.build("ft/users", "finetune/users", ["loss", f"{BadGroups.name}:mode={mode}"], results_dir=out,
                          progress=False))
    assert "\n" not in str(err.value)
    assert not out.exists() or not any(out.rglob("*.json"))


def test_group_scores_contract():
    ids = ["a", "b", "c"]
    assert group_scores({"c": 3, "a": 1, "b": 2}, ids, 6, "s").tolist() == [1, 2, 3]
    assert group_scores([1, 2, 3], ids, 6, "s").tolist() == [1, 2, 3]
    for bad, msg in [([1] * 6, "one per sample"), ([1, 2], "1 group\\(s\\) missing"), ([1, 2, 3, 4], "1 extra"),
                     ([[1, 2, 3]], "shape"), (["x", "y", "z"], "not numbers"), ([1, np.inf, 2], "non-finite")]:
        with pytest.raises(MembenchError, match=msg):
            group_scores(bad, ids, 6, "s")


def test_group_scorer_on_a_split_without_groups_is_one_line(tmp_path):
    class Plain:
        id = "x/plain"
        path = tmp_path
        samples = pd.DataFrame({"uid": ["u"], "text": ["t"]})

    with pytest.raises(MembenchError, match="has no group labels"):
        suite.user_level.labels(Plain())
    with pytest.raises(MembenchError, match="has no groups"):
        suite.user_level.rows(Plain())


GROUP_YAML = """\
name: {name}
version: "1"
authors: ["A. Tester <t@example.org>"]
description: mean token log-probability of a user's texts
threat_model: gray-box; token statistics of the attacker-held texts of each user
capabilities: ["features", "groups"]
"""

GROUP_SCORER = """\
import numpy as np
from benchmark.api import Scorer

class UserMeanLogprob(Scorer):
    name = "{name}"
    requires = ("features", "groups")

    def score(self, inputs):
        sums = {{}}
        for i, g in enumerate(inputs.groups):
            lp = inputs.features.sample(i)["logprob"]
            if len(lp):
                sums.setdefault(g, []).append(float(np.mean(lp)))
        {ret}
"""


def _group_submission(root, name, ret):
    return write_submission(root, name, GROUP_SCORER.format(name=name, ret=ret), GROUP_YAML.format(name=name))


def _jail_flags():
    from benchmark.submissions import isolation_problem

    return [] if isolation_problem() is None else ["--allow-unsandboxed"]


def test_a_submitted_groups_scorer_runs_in_the_sandbox_and_is_published(user_records, tmp_path, capsys):
    import json

    from benchmark.cli import main
    from benchmark.site import build_site

    folder = _group_submission(tmp_path, "user_mean_lp", "return {g: float(np.mean(v)) for g, v in sums.items()}")
    assert main(["validate", str(folder), "--split", "finetune/users", "--target", "ft/users", "--json",
                 *_jail_flags()]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and not any("never used" in w for w in report["warnings"]), report
    out = tmp_path / "published"
    assert main(["evaluate", str(folder), "--split", "finetune/users", "--target", "ft/users", "--results-dir",
                 str(out), "--json", *_jail_flags()]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["kind"] == "group" and record["scorer"]["kind"] == "submission"
    assert record["groups"]["rows"] == "attacker-held" and record["metrics"]["n_members"] == 14
    assert "groups" in record["usage"]["capabilities_used"]
    scan = validate_dir(out)
    assert scan.ok and len(scan.recomputed) == 1, [str(r) for r in scan.rejected]
    publish(out)
    build_site(out, tmp_path / "site")
    page = (tmp_path / "site" / "scorer" / "user_mean_lp.html").read_text()
    assert "14 / 14 groups" in page


@pytest.mark.parametrize("ret,message", [("return np.zeros(len(inputs.uids))", "one per sample"),
                                         ("return {g: 1.0 for g in list(sums)[1:]}", "no score for 1 of"),
                                         ("return {**{g: 1.0 for g in sums}, 'x': 1.0}", "not among"),
                                         ("return {g: float('nan') for g in sums}", "non-finite")])
def test_a_submitted_groups_scorer_with_wrong_output_publishes_nothing(user_records, tmp_path, capsys, ret, message):
    from benchmark.cli import main

    folder = _group_submission(tmp_path, "bad_user_scores", ret)
    out = tmp_path / "published"
    code = main(["evaluate", str(folder), "--split", "finetune/users", "--target", "ft/users", "--results-dir",
                 str(out), *_jail_flags()])
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("membench:")]
    assert code == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    assert not out.exists() or not any(out.rglob("*.json"))


def test_defence_variants_switch_on_one_knob_each():
    table = finetune.recipes()
    parent = table["stdlib-users-full"]
    knobs = {"stdlib-users-full-cap": "per_user_cap", "stdlib-users-full-clip": "clip",
             "stdlib-users-full-early": "early_stopping"}
    for rid, knob in knobs.items():
        child = table[rid]
        assert child.per_user and child.sizes == parent.sizes and child.train == parent.train and child.seed == parent.seed
        changed = {k for k in child.defences if child.defences[k] != parent.defences.get(k)}
        assert changed == {knob}, (rid, changed)


def test_a_restarted_grid_finds_a_finished_group_record(user_records, home):
    from benchmark.grid import finished_records, plan_grid

    job, = plan_grid(["ft/users"], ["finetune/users"], ["user_inference", "loss"]).jobs
    assert job.units == ("group", None)
    found = finished_records(job, home / "results", "float32")
    assert found is not None and found["user_inference"]["kind"] == "group"
