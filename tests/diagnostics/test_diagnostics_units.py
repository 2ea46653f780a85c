"""Diagnostics at the unit of membership (users) and the tokenizer baseline (issue 24).

(a) On a per-user split with random assignment and strongly topical users, stratified folds
over texts leak: a user's other texts sit in the training folds and a bag of words learns the
user's topic, hence its label. Folds drawn over users remove the leak: the blind AUC sits at
chance, at the text level and at the group level.
(b) A tokenizer trained on the members alone is caught by the tokenizer baseline; one trained
on other text of the same source sits at chance.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from benchmark import diagnostics, metrics
from benchmark.diagnostics import TargetTokenizer
from benchmark.diagnostics.crossval import folds
from benchmark.diagnostics.grouped import aucs_of_group_counts, group_block, group_resampled_aucs
from benchmark.errors import MembenchError


def topical_users(n_users: int = 80, per_user: int = 6, seed: int = 1):
    """Users with their own topic words (40% of each text), members drawn at random per user."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))

    def word():
        return "".join(rng.choice(letters, size=rng.integers(4, 9)))

    common = [word() for _ in range(300)]
    member_users = set(rng.permutation(n_users)[: n_users // 2].tolist())
    texts, labels, groups = [], [], []
    for u in range(n_users):
        topic = [word() for _ in range(8)]
        for _ in range(per_user):
            texts.append(" ".join(rng.choice(topic) if rng.random() < 0.4 else rng.choice(common) for _ in range(30)))
            labels.append(int(u in member_users))
            groups.append(f"user{u}")
    return texts, np.array(labels), groups


@pytest.fixture(scope="module")
def users():
    return topical_users()


@pytest.fixture(scope="module")
def both_diagnoses(users):
    texts, labels, groups = users
    return diagnostics.diagnose(texts, labels), diagnostics.diagnose(texts, labels, groups=groups)


def test_grouped_folds_never_put_a_group_on_both_sides(users):
    texts, labels, groups = users
    g = np.asarray(groups)
    pairs = folds(texts, labels, groups=groups)
    assert len(pairs) == 5
    seen = np.concatenate([test for _, test in pairs])
    assert sorted(seen) == list(range(len(texts)))  # a partition
    for train, test in pairs:
        assert not set(g[train]) & set(g[test])
        assert set(labels[test]) == {0, 1}  # stratified: both classes in every fold


def test_text_folds_leak_the_user_topic_and_group_folds_do_not(both_diagnoses):
    flat, grouped = both_diagnoses
    # the leak: stratified folds over texts let the bag of words learn each user's topic
    assert flat["baselines"]["blind_bow"]["auc"] > 0.9 and flat["blind_auc"] > 0.9
    assert flat["verdict"] == "shifted" and not flat["cross_validation"]["grouped"]
    # the fix: folds over users, membership assigned at random per user -> chance
    assert grouped["cross_validation"]["grouped"] and grouped["counts"]["analyzed_groups"] == 80
    assert abs(grouped["baselines"]["blind_bow"]["auc"] - 0.5) < 0.08
    assert grouped["blind_auc"] < 0.6
    lo, hi = grouped["blind_auc_ci95"]  # whole users resampled
    assert lo <= 0.5 <= hi
    assert grouped["verdict"] == "clean" and grouped["verdict_unit"] == "text"


def test_the_group_level_is_reported_and_at_chance(both_diagnoses):
    flat, grouped = both_diagnoses
    assert flat["blind_auc_group"] is None and flat["verdict_group"] is None
    bow = grouped["baselines"]["blind_bow"]["group"]
    assert bow["n_groups"] == 80 and bow["n_member_groups"] == 40 and bow["n_nonmember_groups"] == 40
    assert abs(bow["auc"] - 0.5) < 0.12
    assert grouped["blind_auc_group"] < 0.65 and grouped["verdict_group"] == "clean"
    assert grouped["blind_auc_group"] == max(b["group"]["auc"] for b in grouped["baselines"].values())
    assert "group level" in grouped["unit_note"] and "text level" in grouped["unit_note"]


def test_best_blind_auc_chooses_the_unit_and_counts_the_tokenizer(both_diagnoses):
    flat, grouped = both_diagnoses
    saved = json.loads(json.dumps(diagnostics.public(grouped)))
    assert diagnostics.best_blind_auc(saved) == pytest.approx(grouped["blind_auc"])
    assert diagnostics.best_blind_auc(saved, unit="group") == pytest.approx(grouped["blind_auc_group"])
    assert diagnostics.best_blind_auc(diagnostics.public(flat), unit="group") is None
    assert diagnostics.best_blind_auc(None) is None and diagnostics.best_blind_auc({"error": "bad"}) is None
    saved["tokenizer_baselines"] = {"abc": {"auc": 0.97, "group": {"auc": 0.99}}}
    assert diagnostics.best_blind_auc(saved, tokenizer="abc") == 0.97
    assert diagnostics.best_blind_auc(saved, unit="group", tokenizer="abc") == 0.99
    assert diagnostics.best_blind_auc(saved, tokenizer="other") == pytest.approx(grouped["blind_auc"])
    with pytest.raises(ValueError, match="unit"):
        diagnostics.best_blind_auc(saved, unit="user")


def test_resampled_auc_equals_the_auc_of_the_repeated_groups():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 12, 90)
    labels = rng.integers(0, 2, 90)  # groups holding both labels too
    scores = np.round(rng.normal(size=90), 1)  # ties
    counts = rng.integers(0, 4, size=(6, 12))
    got = aucs_of_group_counts(labels, scores, codes, counts)
    for row, c in zip(got, counts):
        idx = np.repeat(np.arange(90), c[codes])
        assert row == pytest.approx(metrics.auc(labels[idx], scores[idx]))


def test_group_resampled_interval_is_wider_than_text_resampling_on_clustered_scores():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(40), 10)
    labels = (groups % 2).astype(int)
    scores = rng.normal(size=40)[groups] + 0.1 * rng.normal(size=400)  # a group's texts move together
    by_group = np.percentile(group_resampled_aucs(labels, scores, groups), [2.5, 97.5])
    by_text = metrics.auc_interval(labels, scores)
    assert by_group[1] - by_group[0] > 2 * (by_text[1] - by_text[0])


def test_groups_holding_both_labels_have_no_group_level():
    labels = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    block = group_block(labels, np.linspace(0, 1, 8), ["a", "a", "b", "b", "c", "c", "d", "d"])
    assert block["auc"] is None and block["groups_with_both_labels"] == 2 and "per group" in block["why"]


def test_missing_groups_get_one_clear_error(users):
    texts, labels, groups = users
    with pytest.raises(MembenchError, match="have no group"):
        diagnostics.diagnose(texts, labels, groups=[None] + groups[1:])
    with pytest.raises(MembenchError, match="group ids"):
        diagnostics.diagnose(texts, labels, groups=groups[:-1])
    one_member_group = [g if y == 0 else "only" for g, y in zip(groups, labels)]
    with pytest.raises(MembenchError, match="two groups"):
        diagnostics.diagnose(texts, labels, groups=one_member_group)


def test_diagnose_file_with_a_group_field(users, tmp_path, capsys):
    from benchmark.cli import main

    texts, labels, groups = users
    path = tmp_path / "users.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": int(y), "user": g}) + "\n"
                            for t, y, g in zip(texts, labels, groups)))
    assert main(["diagnose", "--file", str(path), "--group-field", "user", "--json", "--jobs", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cross_validation"]["grouped"] and out["blind_auc"] < 0.6 and out["blind_auc_group"] is not None
    assert out["subject"]["group_field"] == "user" and "groups" not in out["subject"]
    assert main(["diagnose", "--file", str(path), "--group-field", "author"]) == 2
    assert "no group field 'author'" in capsys.readouterr().err


def test_a_split_whose_entry_names_a_group_column_is_diagnosed_by_group(users, tmp_path, monkeypatch, capsys):
    from benchmark import suite
    from benchmark.cli import main

    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    texts, labels, groups = users
    path = tmp_path / "forum.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": int(y), "author": g}) + "\n"
                            for t, y, g in zip(texts, labels, groups)))
    assert main(["suite", "add", "mylab/forum", "--file", str(path), "--group-field", "author", "--json"]) == 0
    capsys.readouterr()
    split = suite.ensure("mylab/forum")
    assert split.spec.fields["group"] == "author" and split.samples["group"].nunique() == 80
    assert main(["diagnose", "mylab/forum", "--results-dir", str(tmp_path / "res"), "--json", "--jobs", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cross_validation"]["grouped"] and out["subject"]["groups"]["n_groups"] == 80
    assert out["blind_auc"] < 0.6 and out["blind_auc_group"] is not None and out["verdict"] == "clean"
    # a text given two authors is refused before anything is registered
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": texts[0], "label": 1, "author": "x"}) + "\n"
                   + "".join(json.dumps({"text": t, "label": int(y), "author": g}) + "\n"
                             for t, y, g in zip(texts, labels, groups)))
    assert main(["suite", "add", "mylab/bad", "--file", str(bad), "--group-field", "author"]) == 2
    assert "one text in two groups" in capsys.readouterr().err and "mylab/bad" not in suite.splits()


# --------------------------------------------------------------------------- (b) the tokenizer


@pytest.fixture(scope="module")
def tokenizer_case(tmp_path_factory):
    """Passages of the Python docs assigned at random; BPE tokenizers trained on the members
    alone, and on the rest of the passages (neither members nor non-members)."""
    from benchmark.suite import demo
    from benchmark.targets.demo import train_tokenizer

    texts = list(dict.fromkeys(demo.passages(7)))
    order = np.random.default_rng(0).permutation(len(texts))
    n = int(0.4 * len(texts))
    members = [texts[i] for i in order[:n]]
    nonmembers = [texts[i] for i in order[n:2 * n]]
    other = [texts[i] for i in order[2 * n:]]
    out = tmp_path_factory.mktemp("tokenizers")
    toks = [TargetTokenizer("fitted-on-members", train_tokenizer(members, out / "m", vocab_size=4096), ("leaky",)),
            TargetTokenizer("fitted-on-other-text", train_tokenizer(other, out / "o", vocab_size=4096), ("clean",))]
    diag = diagnostics.diagnose(members + nonmembers, [1] * n + [0] * n, tokenizers=toks)
    return diag


def test_a_tokenizer_fitted_on_members_is_caught(tokenizer_case):
    leaky = tokenizer_case["tokenizer_baselines"]["fitted-on-members"]
    assert leaky["name"] == "blind_tokenizer" and leaky["targets"] == ["leaky"]
    assert leaky["auc"] > 0.7 and leaky["auc_ci95"][0] > 0.6
    assert leaky["verdict"] != "clean"
    # the text-only baselines see nothing: the assignment is random
    assert tokenizer_case["blind_auc"] < 0.6
    # members' own words became merges: whole words and fewer pieces per rare word
    assert leaky["feature_aucs"]["whole_word_rate"] > 0.6 and leaky["feature_aucs"]["rare_word_pieces"] < 0.4


def test_a_tokenizer_fitted_on_other_text_sits_at_chance(tokenizer_case):
    clean = tokenizer_case["tokenizer_baselines"]["fitted-on-other-text"]
    assert abs(clean["auc"] - 0.5) < 0.08
    assert clean["auc_ci95"][0] <= 0.5 <= clean["auc_ci95"][1]
    assert clean["verdict"] == "clean"


def test_the_tokenizer_counts_in_the_best_blind_auc_of_its_targets_only(tokenizer_case):
    saved = diagnostics.public(tokenizer_case)
    leaky = saved["tokenizer_baselines"]["fitted-on-members"]["auc"]
    assert diagnostics.best_blind_auc(saved, tokenizer="fitted-on-members") == leaky
    assert diagnostics.best_blind_auc(saved, tokenizer="fitted-on-other-text") == max(
        saved["blind_auc"], saved["tokenizer_baselines"]["fitted-on-other-text"]["auc"])
    assert diagnostics.best_blind_auc(saved) == saved["blind_auc"]


@pytest.mark.slow
def test_the_demo_targets_tokenizer_sits_at_chance_on_the_demo_split():
    """The demo tokenizer learns from the split's pool (neither class): nothing to find."""
    from benchmark import suite, targets

    handle = targets.load_target("demo/neox-tiny")
    split = suite.ensure(targets.DEMO_SPLIT)
    tok = TargetTokenizer(handle.tokenizer_hash, handle.tokenizer, (handle.id,))
    diag = diagnostics.diagnose_split(split, tokenizers=[tok])
    block = diag["tokenizer_baselines"][handle.tokenizer_hash]
    assert block["verdict"] == "clean" and block["auc"] < 0.6
    assert block["auc_ci95"][0] <= 0.5


def _site_with_units(tmp_path, diagnostics_json: dict | None):
    """A per-user split with a text scorer (LOSS) and a group scorer (user inference), its
    diagnostics JSON (``diagnostics_json``, subject filled in) in the results folder, gated, built."""
    from synthetic_results import synthetic_record

    from benchmark.results import write
    from benchmark.results.gate import publish
    from benchmark.site import build_site

    root = tmp_path / "results"
    for scorer, kind in (("loss", None), ("user_inference", "group")):
        rec, uids, scores = synthetic_record("finetune/users-x", "ft/users-x", scorer, track="finetune",
                                             family="finetune", n=200, strength=2.0)
        if kind:
            rec["kind"] = kind
        write(root, rec, uids, scores)
    if diagnostics_json is not None:
        path = root / "_diagnostics" / "finetune" / "users-x.json"
        path.parent.mkdir(parents=True)
        subject = {"id": "finetune/users-x", "content_hash": rec["split"]["content_hash"]}
        path.write_text(json.dumps({"subject": subject, **diagnostics_json}))
    publish(root)
    report = build_site(root, tmp_path / "site")
    rows = json.loads((report.out_dir / "data" / "split-finetune-users-x.json").read_text())["rows"]
    page = (report.out_dir / "split" / "finetune-users-x.html").read_text()
    return {r["scorer"]: r for r in rows}, page, rec["target"]["tokenizer_sha256"]


def test_the_site_compares_group_scorers_with_the_group_level_blind_auc(tmp_path):
    """On a per-user split the leaky text-level figure of old (0.90) is not what user inference
    is compared with: a group row reads the group-level blind AUC, a text row the text-level one
    (and its target's tokenizer baseline where that is higher), and the page says which unit the
    verdict is at."""
    from synthetic_results import _hash

    tokenizer = _hash("t", "ft/users-x")
    rows, page, _ = _site_with_units(tmp_path, {
        "blind_auc": 0.90, "blind_auc_ci95": [0.85, 0.95], "blind_best": "blind_bow", "verdict": "shifted",
        "verdict_unit": "text", "blind_auc_group": 0.52, "blind_auc_group_ci95": [0.40, 0.64],
        "blind_best_group": "blind_bow", "verdict_group": "clean", "unit_note": "text level: ...; group level: ...",
        "tokenizer_baselines": {tokenizer: {"name": "blind_tokenizer", "auc": 0.93, "auc_ci95": [0.91, 0.95],
                                            "group": {"auc": 0.50, "auc_ci95": [0.38, 0.62]}}},
    })
    group, text = rows["user_inference"], rows["loss"]
    assert group["unit"] == "groups" and text["unit"] == "samples"
    assert group["blind_auc_compared"] == 0.5  # 0.52 rounded to its interval (+-0.12)
    assert group["auc_minus_blind"] == pytest.approx(group["auc"] - 0.5, abs=0.01) and group["vs_blind"] == "above"
    assert text["blind_auc_compared"] == 0.93  # its target's tokenizer baseline, above the text-level 0.90
    assert text["auc_minus_blind"] == pytest.approx(text["auc"] - 0.93, abs=0.01)
    assert re.search(r"above \+0\.\d+ \(over groups\)", page)
    assert "over texts" in page and "Unit of membership" in page
    assert re.search(r'badge verdict clean"[^>]*>clean</span> over groups', page)


def test_without_a_group_level_a_group_scorer_is_not_compared_with_the_text_level(tmp_path):
    rows, page, _ = _site_with_units(tmp_path, {"blind_auc": 0.90, "blind_auc_ci95": [0.85, 0.95],
                                                "verdict": "shifted"})  # diagnosed before units existed
    group, text = rows["user_inference"], rows["loss"]
    assert "group-level" in group["auc_minus_blind"] and "group-level" in group["blind_auc_compared"]
    assert "group-level" in group["vs_blind"]
    assert text["blind_auc_compared"] == 0.9 and text["vs_blind"] in ("above", "not above")
    assert "over texts" in page and "over groups:" not in page


def test_membench_run_names_the_unit_of_each_blind_auc_it_prints():
    from benchmark.commands.run import blind_note

    group = {"kind": "group", "metrics": {"best_blind_auc": 0.519}}
    text = {"metrics": {"best_blind_auc": 0.55}}
    assert blind_note([group, text]) == ("best blind AUC these records are compared with (the target's tokenizer baseline counts): "
                                         "0.550 over texts, 0.519 over groups")
    assert blind_note([text]).endswith("counts): 0.550 over texts")
    assert blind_note([{"metrics": {}}]) is None
