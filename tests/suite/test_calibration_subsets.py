"""Calibration subsets (benchmark/suite/calibration.py): declared in the registry, seeded,
content-dependent, per-class fractions, and disjoint from the evaluated rest by uid and by
near-duplicates (WikiMIA-24's own included)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from fit_helpers import Memorizer, planted_rows, write_jsonl

from benchmark import suite
from benchmark.cli import main
from benchmark.errors import MembenchError
from benchmark.suite import calibration as cal


def _data(rows):
    texts = [r["text"] for r in rows]
    uids = [suite.make_uid(t) for t in texts]
    return uids, texts, np.asarray([r["label"] for r in rows])


def _crossing(uids, texts, calibration, ngram=13):
    """Pairs of near-duplicates (normalized text or a shared word n-gram) split across sides."""
    side = {u: u in set(calibration) for u in uids}
    seen: dict = {}
    crossing = 0
    for u, t in zip(uids, texts):
        words = cal.normalize(t).split()
        for key in ["=" + cal.normalize(t)] + [" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]:
            for other in seen.setdefault(key, []):
                crossing += side[other] != side[u]
            seen[key].append(u)
    return crossing


SPEC = cal.SubsetSpec("cal25", 0.25, seed=3)


def test_subsets_take_a_fraction_of_each_class_and_split_the_uids():
    uids, texts, y = _data(planted_rows())
    calibration, rest, counts = cal.assign(uids, texts, y, SPEC)
    assert set(calibration).isdisjoint(rest) and sorted(calibration + rest) == sorted(uids)
    label = dict(zip(uids, y))
    n_mem, n_non = int(y.sum()), int((y == 0).sum())
    got_mem = sum(label[u] for u in calibration)
    assert counts["calibration"] == {"members": got_mem, "nonmembers": len(calibration) - got_mem}
    assert abs(got_mem - round(0.25 * n_mem)) <= 2 and abs(len(calibration) - got_mem - round(0.25 * n_non)) <= 2
    assert counts["rest"]["members"] + got_mem == n_mem


def test_subsets_depend_on_content_and_seed_not_row_order():
    uids, texts, y = _data(planted_rows())
    first = cal.assign(uids, texts, y, SPEC)[0]
    order = np.random.default_rng(1).permutation(len(uids))
    shuffled = cal.assign([uids[i] for i in order], [texts[i] for i in order], y[order], SPEC)[0]
    assert shuffled == first
    assert cal.assign(uids, texts, y, cal.SubsetSpec("cal25", 0.25, seed=4))[0] != first
    assert cal.assign(uids, texts, y, cal.SubsetSpec("other", 0.25, seed=3))[0] != first  # the name seeds it too


@pytest.mark.parametrize("seed", range(8))
def test_near_duplicates_stay_on_one_side(seed):
    uids, texts, y = _data(planted_rows())
    spec = cal.SubsetSpec("cal50", 0.5, seed=seed)
    calibration, _, counts = cal.assign(uids, texts, y, spec)
    assert counts["components_merged"] >= 24  # the planted pairs (12 re-cased, 12 sharing 15 words)
    assert _crossing(uids, texts, calibration) == 0
    # without the grouping, some planted pair crosses for most seeds: the grouping is what holds them
    naive = cal.assign(uids, texts, y, spec, group_near_duplicates=False)[0]
    assert _crossing(uids, texts, naive) > 0


def test_a_memorizer_learns_nothing_about_the_rest_and_would_without_grouping():
    """Calibration labels remembered by uid, normalized text or 13-gram say nothing about the
    evaluated rest (every rest score is the same), but would leak through a uid-only split."""
    from sklearn.metrics import roc_auc_score

    for cross, group in ((True, True), (False, True), (False, False)):
        uids, texts, y = _data(planted_rows(cross=cross))
        label = dict(zip(uids, y))
        by_uid = dict(zip(uids, texts))
        calibration, rest, _ = cal.assign(uids, texts, y, cal.SubsetSpec("cal50", 0.5, seed=0),
                                          group_near_duplicates=group)
        memo = Memorizer()
        cal_inputs = type("I", (), {"uids": calibration, "texts": [by_uid[u] for u in calibration]})
        memo.fit(cal_inputs, np.asarray([label[u] for u in calibration]))
        scores = np.asarray([memo.recall(u, by_uid[u]) for u in rest])
        auc = roc_auc_score([label[u] for u in rest], scores)
        if group:
            assert np.all(scores == 0.5) and auc == 0.5
        else:  # a uid-only split hands it the labels of the rest's near-duplicates
            assert auc > 0.53


def test_every_split_has_the_default_set_and_an_entry_may_override_it():
    defaults = cal.default_subsets()
    assert {"cal10", "cal80"} <= set(defaults) and defaults["cal80"].fraction == 0.8
    for spec in list(suite.splits().values())[:5]:
        assert set(cal.subsets(spec)) == set(defaults)
    spec = suite.get_split("demo/pydoc")
    custom = type(spec)(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__ if f != "extra"},
                           "extra": {"calibration": {"cal10": {"seed": 5}, "cal80": None, "cal30": {"fraction": 0.3, "seed": 1}}}})
    table = cal.subsets(custom)
    assert set(table) == {"cal10", "cal30"} and table["cal10"].seed == 5 and table["cal10"].fraction == 0.1


def test_an_unknown_subset_or_a_bad_declaration_is_one_line():
    spec = suite.get_split("demo/pydoc")
    with pytest.raises(MembenchError) as err:
        cal.subset_spec(spec, "cal8")
    assert "cal80" in str(err.value) and "membench calibration list" in str(err.value)
    bad = type(spec)(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__ if f != "extra"},
                        "extra": {"calibration": {"half": {"fraction": 1.5, "seed": 1}}}})
    with pytest.raises(MembenchError, match="fraction must be a number in"):
        cal.subsets(bad)


def test_a_registered_split_gets_the_default_set_and_its_own(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    data = write_jsonl(planted_rows(), tmp_path / "planted.jsonl")
    split = suite.add_local_split("mylab/planted", data)
    assert set(cal.subsets(split.spec)) == set(cal.default_subsets())
    chosen = cal.select(split, "cal10")
    assert len(chosen.calibration) + len(chosen.rest) == len(split.samples)
    assert main(["calibration", "list", "mylab/planted", "--json"]) == 0
    listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)["subsets"]}
    assert listed["cal10"]["n_calibration"] == len(chosen.calibration)
    assert listed["cal10"]["calibration_sha256"] == chosen.calibration_sha256
    assert main(["calibration", "list", "mylab/planted", "--json"]) == 0  # the same again
    assert json.loads(capsys.readouterr().out)["subsets"][0]["calibration_sha256"] == listed["cal10"]["calibration_sha256"]
    # a registered entry may declare its own subsets
    from benchmark import registered

    entry = yaml.safe_load(registered.entry_file("splits", "mylab/planted").read_text())
    entry["calibration"] = {"cal50": {"fraction": 0.5, "seed": 9}}
    registered.add("splits", entry, replace=True)
    assert "cal50" in cal.subsets(suite.get_split("mylab/planted"))
    assert main(["calibration", "list", "mylab/nothing"]) == 2
    assert capsys.readouterr().err.startswith("membench: error: unknown split")


def test_wikimia24_near_duplicates_cross_the_classes_and_never_the_sides(shared_data):
    """WikiMIA-24 holds near-duplicate rows across classes; no subset splits a pair of them."""
    from datasets import load_from_disk

    ds = load_from_disk(str(shared_data / "wikimia24"))["WikiMIA_length64"]
    seen, rows = set(), []
    for t, lab in zip(ds["input"], ds["label"]):
        if t not in seen:  # exact duplicates are dropped when the split is materialized
            seen.add(t)
            rows.append({"text": t, "label": lab})
    uids, texts, y = _data(rows)
    comps = cal.near_duplicate_components(uids, texts)
    label = dict(zip(uids, y))
    assert any(len({label[u] for u in g}) == 2 for g in comps)  # near-duplicates across the classes
    for name, fraction in (("cal10", 0.1), ("cal80", 0.8)):
        calibration, rest, counts = cal.assign(uids, texts, y, cal.SubsetSpec(name, fraction, seed=20240914))
        assert _crossing(uids, texts, calibration) == 0
        assert min(counts["calibration"].values()) > 0 and min(counts["rest"].values()) > 0
