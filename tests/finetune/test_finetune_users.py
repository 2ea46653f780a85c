"""The user-level demo recipes with hundreds of users (issue 24), their pool, and the demo
tokenizers that learn from neither class. No training here: assignment and data only."""

from __future__ import annotations

from benchmark import finetune, suite
from benchmark.finetune import assign, pools


def test_owner_pool_has_hundreds_of_users_and_is_disjoint_from_pydoc():
    from benchmark.suite import demo

    table = pools.stdlib_docstrings("stdlib-docstring-owners")
    min_words, max_words, by = pools.DOCSTRING_POOLS["stdlib-docstring-owners"]
    words = table["text"].str.split().str.len()
    assert table["text"].is_unique and words.min() >= min_words and words.max() <= max_words and by == "owner"
    users = table["user"].value_counts()
    assert (users >= 4).sum() >= 256  # the shipped recipe draws 120 + 120 + 16 of them
    assert "logging.handlers" in users and "logging.handlers.RotatingFileHandler" in users  # module and class owners
    topics = {g for p in demo.passages(20240501) for g in pools._word_grams(p)}
    assert not any(pools._word_grams(t) & topics for t in table["text"])


def test_the_user_recipes_assign_hundreds_of_users_alike():
    table = finetune.recipes()
    parent = table["stdlib-users-full"]
    pool, _ = pools.load(parent)
    asg = assign.assign(parent, pool)
    assert len(asg.member_groups) == len(asg.nonmember_groups) == 120
    groups = set(asg.member_groups) | set(asg.nonmember_groups)
    assert len(groups) == 240 and len({asg.group[t] for t in asg.attacker}) == 240
    for rid in ("stdlib-users-full-cap", "stdlib-users-full-clip", "stdlib-users-full-early"):
        assert table[rid].sizes == parent.sizes and table[rid].pool == parent.pool
    capped = assign.assign(table["stdlib-users-full-cap"], pool)
    assert capped.member_groups == asg.member_groups and len(capped.members) <= 2 * 120


def test_demo_tokenizers_learn_from_the_pool_only():
    from benchmark import targets
    from benchmark.targets import _demo_training_texts

    split = suite.ensure(targets.DEMO_SPLIT)
    texts, what, tokenizer_texts = _demo_training_texts("demo/neox-tiny")
    assert what == f"members of {split.id}" and set(texts) <= set(split.samples["text"])
    assert tokenizer_texts and not set(tokenizer_texts) & set(split.samples["text"])
    ref_texts, _, ref_tokenizer_texts = _demo_training_texts(targets.DEMO_REFERENCE)
    assert ref_tokenizer_texts == tokenizer_texts == ref_texts  # target and reference share one tokenizer


def test_defence_families_pair_each_knob_with_the_undefended_recipe():
    from benchmark.finetune import defences

    fams = defences.families()
    assert list(fams) == ["stdlib-users-full", "stdlib-users-full-sgd"]
    ids = [r.id for r in fams["stdlib-users-full"]]
    assert ids[0] == "stdlib-users-full" and set(ids[1:]) == {
        "stdlib-users-full-cap", "stdlib-users-full-cap-steps", "stdlib-users-full-clip", "stdlib-users-full-dp8",
        "stdlib-users-full-early"}
    assert [r.id for r in fams["stdlib-users-full-sgd"]] == ["stdlib-users-full-sgd", "stdlib-users-full-clip-sgd"]
    texts = {r.id: defences._defence_text(r.defences) for r in fams["stdlib-users-full"]}
    assert texts["stdlib-users-full"] == "none" and "2 trained texts" in texts["stdlib-users-full-cap"]
    assert "per-example" in texts["stdlib-users-full-clip"] and "early stopping" in texts["stdlib-users-full-early"]
    assert "DP-SGD at epsilon 8" in texts["stdlib-users-full-dp8"]


def _defence_records(root):
    """Group-level user-inference records of the defence family: the undefended recipe and the
    clipping variant alike (AUC about 0.9), the cap variant at chance; 120 + 120 users each."""
    from synthetic_results import synthetic_record

    from benchmark.results import write

    table = finetune.recipes()
    for rid, strength in (("stdlib-users-full", 2.0), ("stdlib-users-full-clip", 2.0), ("stdlib-users-full-cap", 0.0)):
        recipe = table[rid]
        rec, uids, scores = synthetic_record(recipe.split_id, recipe.target_id, "user_inference", track="finetune",
                                             family="finetune-per-user", n=240, strength=strength)
        rec["kind"] = "group"
        uids = [f"synthetic-user-{i}" for i in range(len(uids))]  # the same users in every variant
        rec["provenance"]["recipe"] = {"id": rid, "sha256": recipe.sha256, "kind": "finetune", "base": recipe.base,
                                       "method": recipe.method, "assign": "user", "defences": recipe.defences}
        write(root, rec, uids, scores)
    return table


def test_the_defence_table_reports_widths_and_where_intervals_overlap(tmp_path, capsys):
    from benchmark.cli import main
    from benchmark.finetune import defences

    root = tmp_path / "results"
    table = _defence_records(root)
    rows = {r["recipe"]: r for r in defences.table(root, recipes_table=table)}
    assert "missing" in rows["stdlib-users-full-early"]  # no record: a row saying so
    parent, clip, cap = rows["stdlib-users-full"], rows["stdlib-users-full-clip"], rows["stdlib-users-full-cap"]
    assert parent["n_member_users"] == 120 and "intervals_overlap_parent" not in parent
    for r in (parent, clip, cap):
        assert r["ci95_width"] == r["auc_ci95"][1] - r["auc_ci95"][0] > 0
    assert clip["intervals_overlap_parent"] is True and cap["intervals_overlap_parent"] is False
    assert main(["finetune", "--defences", "--results-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "width" in out and "overlaps none" in out


def test_the_fine_tuned_page_says_where_defence_intervals_overlap(tmp_path):
    from benchmark.results.gate import publish
    from benchmark.site import build_site

    root = tmp_path / "results"
    _defence_records(root)
    publish(root)
    page = (build_site(root, tmp_path / "site").out_dir / "finetune.html").read_text()
    table = page.split('id="defence-table"')[1].split("</table>")[0]
    assert "interval width" in table and "overlaps undefended" in table
    notes = " ".join(p for p in page.split("<p") if "defence-overlap" in p)
    assert "stdlib-users-full-clip overlaps the undefended one" in notes
    assert "stdlib-users-full-cap lies apart from the undefended one" in notes
    assert "120 / 120 users" in notes
