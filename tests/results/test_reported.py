"""Reported results: the shipped registry validates, bad rows are refused with the row named,
and reported rows are paired with reproduced records (value, interval, difference, within)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from benchmark.cli import main
from benchmark.home import PUBLISHED_RESULTS
from benchmark.results import reported, write
from synthetic_results import synthetic_record

SOURCE = {"repo": "someone/paper-code", "path": "results.json", "commit": "a" * 40, "where": "key x"}


def _file(**table_overrides) -> str:
    """A one-table reported file (YAML text) with a membench row and an external row."""
    table = {
        "id": "Table 1",
        "title": "AUC on WikiMIA",
        "source": SOURCE,
        "metric": {"kind": "auc"},
        "scale": "percent",
        "split": {"name": "WikiMIA_length32", "membench": "wikimia/32"},
        "columns": {
            "loss": {"header": "Loss", "attack": {"name": "Loss", "membench": "loss"}},
            "mink": {"header": "Min-K% (k=0.1)", "attack": {"name": "Min-K%", "membench": "min_k", "setting": {"k": 0.1}}},
            "tpr": {"header": "TPR@1%", "metric": {"kind": "tpr_at_fpr", "fpr": 0.01},
                    "attack": {"name": "Loss", "membench": "loss"}},
        },
        "rows": [
            {"target": {"name": "Pythia-2.8B", "membench": "pythia-2.8b", "membench_revision": "step143000"},
             "values": {"loss": "61.4", "mink": "59.5%", "tpr": "4.0"}},
            {"target": {"name": "LLaMA-13B"}, "values": {"loss": "67.5"}},
        ],
    }
    table["columns"].update(table_overrides.pop("columns", {}))  # a column given replaces the default one
    table.update(table_overrides)
    doc = {"paper": {"key": "someone2024paper", "reference": "Someone. A paper. 2024.", "arxiv": "2401.00001"},
           "tables": [table]}
    return json.dumps(doc)  # JSON is YAML


def _rows(**overrides):
    rows, problems = reported.parse(_file(**overrides))
    return rows, problems


def test_the_shipped_registry_validates():
    rows, problems = reported.validate_dir(PUBLISHED_RESULTS)
    assert problems == []
    papers = {r.paper.key for r in rows}
    assert {"duan2024mimir", "zhang2025minkpp", "das2024blind"} <= papers
    for r in rows:  # every value names where it was read, openable
        assert r.source.address.startswith("https://")
        assert r.source.where
        assert 0.0 <= r.value <= 1.0
    # the reproducible rows map onto the suite, the registry and the scorers
    assert sum(r.reproducible for r in rows) > 100
    assert any(r.split.membench == "mimir/arxiv/ngram_13_0.8" and r.target.membench == "pythia-12b" for r in rows)


def test_a_valid_file_gives_one_row_per_cell():
    rows, problems = _rows()
    assert problems == []
    assert len(rows) == 4
    by_col = {(r.target.name, r.column): r for r in rows}
    assert by_col[("Pythia-2.8B", "loss")].value == pytest.approx(0.614)
    assert by_col[("Pythia-2.8B", "mink")].value == pytest.approx(0.595)
    assert by_col[("Pythia-2.8B", "mink")].attack.label == "min_k(k=0.1)"
    assert by_col[("Pythia-2.8B", "tpr")].metric.fpr == 0.01
    assert by_col[("Pythia-2.8B", "loss")].reproducible
    assert not by_col[("LLaMA-13B", "loss")].reproducible  # no membench target
    assert "column Loss" in by_col[("Pythia-2.8B", "loss")].source.where


def test_a_row_without_a_source_is_refused():
    _, problems = _rows(source=None)
    assert problems and all("source" in p and "missing" in p for p in problems)
    assert "row 1" in problems[0]
    with pytest.raises(ValidationError, match="source"):
        reported.ReportedRow(
            paper={"key": "someone2024paper", "reference": "x", "arxiv": "2401.00001"}, table="t", table_title="t",
            column="c", target={"name": "m"}, split={"name": "s", "membench": "wikimia/32"},
            attack={"name": "a", "membench": "loss"}, metric={"kind": "auc"}, printed="0.5", scale="fraction")


@pytest.mark.parametrize("bad", [
    {"url": "ftp://example.org/x", "where": "t1"},  # not http(s)
    {"repo": "someone/code", "path": "r.json", "where": "k"},  # no commit
    {"repo": "someone/code", "path": "r.json", "commit": "abc", "where": "k"},  # not a commit id
    {"url": "https://example.org", "where": " "},  # where is empty
])
def test_a_source_that_cannot_be_opened_is_refused(bad):
    _, problems = _rows(source=bad)
    assert problems


@pytest.mark.parametrize("value, scale, why", [
    ("101", "percent", "outside [0, 1]"),
    ("61.4", "fraction", "outside [0, 1]"),
    ("-0.1", "fraction", "outside [0, 1]"),
    ("61.4%", "fraction", "% sign"),
    ("/", "percent", "not a number"),
    ("nan", "fraction", "not a finite number"),
])
def test_a_value_outside_its_metric_is_refused(value, scale, why):
    rows = [{"target": {"name": "Pythia-2.8B", "membench": "pythia-2.8b", "membench_revision": "step143000"},
             "values": {"loss": value}}]
    _, problems = _rows(rows=rows, scale=scale)
    assert len(problems) == 1 and why in problems[0], problems
    assert "row 1, column 'loss'" in problems[0]


def test_declarations_that_say_too_little_are_refused():
    cases = [
        ({"split": {"name": "BookMIA", "external": "bookmia"}}, "needs a note"),
        ({"split": {"name": "WikiMIA", "membench": "wikimia/32", "external": "x", "note": "n"}}, "exactly one"),
        ({"metric": {"kind": "tpr_at_fpr"}}, "needs fpr"),
        ({"metric": {"kind": "auc", "fpr": 0.01}}, "takes no fpr"),
        ({"columns": {"loss": {"header": "L", "attack": {"name": "X", "external": "x/y"}}}}, "needs a note"),
        ({"columns": {"loss": {"header": "L", "attack": {"name": "X", "membench": "loss", "analogue": "zlib"}}}},
         "analogue is for an external attack"),
    ]
    for overrides, why in cases:
        _, problems = _rows(**overrides)
        assert any(why in p for p in problems), (overrides, problems)


def test_ids_that_claim_to_be_membench_must_resolve():
    def problems_of(**overrides):
        rows, problems = _rows(**overrides)
        assert problems == []
        return reported.check_ids(rows)

    assert problems_of() == []
    assert any("not in the suite registry" in p for p in problems_of(split={"name": "x", "membench": "wikimia/33"}))
    cols = {"loss": {"header": "L", "attack": {"name": "L", "membench": "los"}}}
    assert any("not a membench scorer" in p for p in problems_of(columns=cols))
    cols = {"loss": {"header": "L", "attack": {"name": "M", "membench": "min_k", "setting": {"k": 0.2}}}}
    assert any("not canonical" in p for p in problems_of(columns=cols))  # the default is left out
    cols = {"loss": {"header": "L", "attack": {"name": "M", "membench": "min_k", "setting": {"kk": 0.1}}}}
    assert any("no parameter 'kk'" in p for p in problems_of(columns=cols))
    rows = [{"target": {"name": "P", "membench": "pythia-2.9b", "membench_revision": "main"}, "values": {"loss": "60"}}]
    assert any("pythia-2.9b" in p for p in problems_of(rows=rows))
    rows = [{"target": {"name": "P", "membench": "pythia-160m", "membench_revision": "step99001"}, "values": {"loss": "60"}}]
    assert any("no revision 'step99001'" in p for p in problems_of(rows=rows))
    rows = [{"target": {"name": "P", "membench": "pythia-160m"}, "values": {"loss": "60"}}]
    assert any("no membench_revision" in p and "step143000" in p for p in problems_of(rows=rows))
    cols = {"loss": {"header": "L", "attack": {"name": "R", "membench": "reference", "reference": "EleutherAI/x",
                                               "reference_membench": "pythia-7m"}}}
    assert any("pythia-7m" in p for p in problems_of(columns=cols))


def test_file_level_problems_name_the_file(tmp_path):
    folder = tmp_path / reported.REPORTED_DIR
    folder.mkdir()
    (folder / "other2024name.yaml").write_text(_file())
    (folder / "broken2024file.yaml").write_text("paper: [unclosed")
    rows, problems = reported.load_dir(tmp_path)
    assert len(rows) == 4
    assert any("other2024name.yaml" in p and "name it someone2024paper.yaml" in p for p in problems)
    assert any("broken2024file.yaml: not valid YAML" in p for p in problems)
    twice = json.loads(_file())
    twice["tables"][0]["rows"].append(twice["tables"][0]["rows"][1])
    _, problems = reported.parse(json.dumps(twice))
    assert any("is given 2 times" in p for p in problems)


# --------------------------------------------------------------------------------------------
# Pairing


def _made(split, target, scorer, *, revision="step143000", strength=1.0, seed=0, extra=None, kind="attack"):
    """(record, uids, scores) of a synthetic record made by the real metrics stage."""
    return synthetic_record(split, target, scorer, revision=revision, strength=strength, seed=seed, n=200,
                            kind=kind, extra=extra)


def _record(*args, **kwargs) -> dict:
    return _made(*args, **kwargs)[0]


def test_pairing_sets_reported_beside_reproduced():
    rows, problems = _rows()
    assert problems == []
    loss = _record("wikimia/32", "pythia-2.8b", "loss", strength=0.5)
    mink = _record("wikimia/32", "pythia-2.8b", "min_k(k=0.1)", strength=0.4, seed=1)
    other_rev = _record("wikimia/32", "pythia-2.8b", "loss", revision="step99000", strength=3.0, seed=2)
    out = {(p["target"], p["column"]): p for p in reported.pair(rows, [loss, mink, other_rev])}

    p = out[("Pythia-2.8B", "loss")]
    assert p["status"] == "reproduced" and p["comparison"] == "exact"
    assert p["reproduced"] == loss["metrics"]["auc"]
    assert p["ci95"] == list(loss["metrics"]["auc_ci95"])
    assert p["difference"] == pytest.approx(loss["metrics"]["auc"] - 0.614)
    lo, hi = loss["metrics"]["auc_ci95"]
    assert p["within_interval"] is (lo <= 0.614 <= hi)
    assert p["record"] == ["wikimia/32", "pythia-2.8b", "step143000", "loss", None]

    q = out[("Pythia-2.8B", "mink")]
    assert q["status"] == "reproduced" and q["reproduced"] == mink["metrics"]["auc"]

    t = out[("Pythia-2.8B", "tpr")]  # TPR at 1% FPR from the record's budget block
    block = loss["metrics"]["tpr_at_fpr"]["0.01"]
    if block["resolvable"]:
        assert t["status"] == "reproduced" and t["reproduced"] == block["value"]

    r = out[("LLaMA-13B", "loss")]
    assert r["status"] == "reported only" and "not a membench target" in r["reason"]


def test_within_interval_is_true_inside_and_false_outside():
    rec = _record("wikimia/32", "pythia-2.8b", "loss", strength=0.8)
    lo, hi = rec["metrics"]["auc_ci95"]
    inside = f"{100 * (lo + hi) / 2:.6f}"
    outside = f"{100 * min(hi + 0.05, 1.0):.6f}"
    for printed, expected in ((inside, True), (outside, False)):
        rows, problems = _rows(rows=[{"target": {"name": "P", "membench": "pythia-2.8b",
                                                  "membench_revision": "step143000"}, "values": {"loss": printed}}])
        assert problems == []
        (p,) = reported.pair(rows, [rec])
        assert p["within_interval"] is expected


def test_pairing_says_why_a_row_is_reported_only():
    rows, _ = _rows()
    loss_rows = [r for r in rows if r.column == "loss" and r.target.membench]
    tpr_rows = [r for r in rows if r.column == "tpr"]
    # no record at all
    (p,) = reported.pair(loss_rows, [])
    assert p["status"] == "reported only" and "no record of loss on wikimia/32 x pythia-2.8b@step143000" in p["reason"]
    # another revision, another split, a record on a calibration subset's rest: not the same number
    recs = [_record("wikimia/32", "pythia-2.8b", "loss", revision="step99000"),
            _record("wikimia/64", "pythia-2.8b", "loss"),
            _record("wikimia/32", "pythia-2.8b", "loss", extra={"evaluation_subset": {"name": "cal10"}})]
    (p,) = reported.pair(loss_rows, recs)
    assert p["status"] == "reported only"
    # a budget the record does not hold, and one it cannot resolve
    rec = _record("wikimia/32", "pythia-2.8b", "loss")
    rows5, _ = _rows(columns={"tpr": {"header": "T", "metric": {"kind": "tpr_at_fpr", "fpr": 0.05},
                                      "attack": {"name": "Loss", "membench": "loss"}}},
                     rows=[{"target": {"name": "P", "membench": "pythia-2.8b", "membench_revision": "step143000"},
                            "values": {"tpr": "10"}}])
    (p,) = reported.pair(rows5, [rec])
    assert p["status"] == "reported only" and "not at 0.05" in p["reason"]
    rec["metrics"]["tpr_at_fpr"]["0.01"] = {"value": None, "ci95": None, "resolvable": False}
    (p,) = reported.pair(tpr_rows, [rec])
    assert "unresolvable" in p["reason"]


def test_pairing_matches_the_reference_model_the_subset_and_analogues():
    cols = {"ref": {"header": "Ref", "attack": {"name": "Ref", "membench": "reference", "reference": "EleutherAI/pythia-70m",
                                                "reference_membench": "pythia-70m"}}}
    row = {"target": {"name": "P", "membench": "pythia-2.8b", "membench_revision": "step143000"}, "values": {"ref": "60"}}
    rows, problems = _rows(columns=cols, rows=[row])
    assert problems == []
    other = _record("wikimia/32", "pythia-2.8b", "reference")
    other["provenance"]["reference"] = {"id": "pythia-160m"}
    (p,) = reported.pair(rows, [other])
    assert p["status"] == "reported only" and "(reference pythia-70m)" in p["reason"]
    same = _record("wikimia/32", "pythia-2.8b", "reference", seed=3)
    same["provenance"]["reference"] = {"id": "pythia-70m"}
    (p,) = reported.pair(rows, [other, same])
    assert p["status"] == "reproduced" and p["reproduced"] == same["metrics"]["auc"]

    # a paper's numbers on a calibration subset's evaluated rest pair with the rest record only
    rows, _ = _rows(subset="cal80", rows=[{**row, "values": {"loss": "60"}}])
    whole = _record("wikimia/32", "pythia-2.8b", "loss")
    rest = _record("wikimia/32", "pythia-2.8b", "loss", seed=4, extra={"evaluation_subset": {"name": "cal80"}})
    (p,) = reported.pair(rows, [whole, rest])
    assert p["reproduced"] == rest["metrics"]["auc"] and p["record"][-1] == "cal80"

    # an external attack's analogue is compared, and marked as an analogue; a blind row has no revision
    cols = {"bow": {"header": "bow", "attack": {"name": "bag_of_words", "external": "x/bow", "analogue": "blind_bow",
                                                "note": "another classifier"}}}
    blind = {"target": {"name": "no model", "membench": "none"}, "values": {"bow": "99"}}
    rows, problems = _rows(columns=cols, rows=[blind])
    assert problems == [] and reported.check_ids(rows) == []
    rec = _record("wikimia/32", "none", "blind_bow", kind="blind_baseline", revision=None)
    (p,) = reported.pair(rows, [rec])
    assert p["status"] == "reproduced" and p["comparison"] == "analogue"


def test_pair_with_results_reads_a_results_folder(tmp_path):
    rows, _ = _rows()
    write(tmp_path, *_made("wikimia/32", "pythia-2.8b", "loss"))
    out = reported.pair_with_results(rows, tmp_path)
    assert [p["status"] for p in out if p["column"] == "loss" and p["target"] == "Pythia-2.8B"] == ["reproduced"]


def test_cli_lists_checks_and_pairs(tmp_path, capsys):
    assert main(["results", "reported", "--paper", "das2024blind", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["problems"] == [] and len(payload["rows"]) > 5
    assert all(r["source"]["address"].startswith("https://github.com/ethz-spylab/Blind-MIA/") for r in payload["rows"])

    folder = tmp_path / reported.REPORTED_DIR
    folder.mkdir()
    (folder / "someone2024paper.yaml").write_text(_file())
    write(tmp_path, *_made("wikimia/32", "pythia-2.8b", "loss"))
    assert main(["results", "reported", "--results", str(tmp_path), "--pair"]) == 0
    out = capsys.readouterr().out
    assert "reproduced" in out and "4 reported value(s), " in out

    (folder / "someone2024paper.yaml").write_text(_file(split={"name": "x", "membench": "wikimia/33"}))
    assert main(["results", "reported", "--results", str(tmp_path)]) == 1
    assert "problem:" in capsys.readouterr().out
    assert main(["results", "reported", "--results", str(tmp_path), "--paper", "nobody2020x"]) == 2
    assert "no reported results for paper nobody2020x" in capsys.readouterr().err
