"""`membench validate` and `membench evaluate` from the command line (text-only scorers: cheap)."""

from __future__ import annotations

import json

import pytest
from submission_helpers import text_scorer_submission

from benchmark.cli import main
from benchmark.submissions import isolation_problem

pytestmark = pytest.mark.skipif(isolation_problem() is not None, reason="no full jail here")

def _sub(tmp_path, name, expr):
    return text_scorer_submission(tmp_path, name, expr)


def test_validate_json_reports_every_check(tmp_path, capsys):
    d = _sub(tmp_path, "by_length", "len(t)")
    assert main(["validate", str(d), "-n", "16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and len(report["checks"]) == 7 and all(c["ok"] for c in report["checks"])
    assert report["usage"] == "capabilities used: none (text only)"


def test_validate_catches_nondeterminism(tmp_path, capsys):
    d = _sub(tmp_path, "coin", "random.SystemRandom().random()")
    assert main(["validate", str(d), "-n", "16"]) == 2
    err = capsys.readouterr().err
    assert "coin is not deterministic: 16 of 16 scores differ" in err and "\n" not in err.strip()


@pytest.mark.parametrize("name, why", [("loss", "is the name of a built-in attack"),
                                       ("blind_bow", "is reserved for blind baselines"),
                                       ("blind_anything", "is reserved for blind baselines")])
def test_validate_and_evaluate_refuse_a_reserved_name(tmp_path, capsys, name, why):
    d = _sub(tmp_path, name, "len(t)")
    assert main(["validate", str(d)]) == 2
    assert why in capsys.readouterr().err
    assert main(["validate", str(d), "--json"]) == 2  # the report on stdout, the error on stderr
    out = capsys.readouterr()
    assert not json.loads(out.out)["ok"] and why in out.err
    results = tmp_path / "results"
    assert main(["evaluate", str(d), "--split", "demo/pydoc", "--target", "demo/neox-tiny",
                 "--results-dir", str(results)]) == 2
    assert why in capsys.readouterr().err and not list(results.rglob("*.json"))


def test_evaluate_writes_a_submission_record(tmp_path, capsys):
    d = _sub(tmp_path, "by_length", "len(t)")
    out = tmp_path / "results"
    assert main(["evaluate", str(d), "--split", "demo/pydoc", "--target", "demo/neox-tiny",
                 "--results-dir", str(out), "--log", str(tmp_path / "log"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["scorer"]["kind"] == "submission" and record["target"]["id"] == "none"
    assert record["scorer"]["owner"] == "maintainers" and record["split"]["private"] is False
    assert len(list((out / "demo" / "pydoc" / "none").glob("by_length-*.json"))) == 1
    assert main(["evaluate", str(d), "--split", "demo/pydoc", "--target", "demo/neox-tiny",
                 "--results-dir", str(out), "--log", str(tmp_path / "log")]) == 0
    text = capsys.readouterr().out
    assert "capabilities used: none (text only)" in text and "capabilities_used" not in text


def test_evaluate_publishes_nothing_on_a_fault(tmp_path, capsys):
    d = _sub(tmp_path, "broken", "float('nan')")
    out = tmp_path / "results"
    assert main(["evaluate", str(d), "--split", "demo/pydoc", "--target", "demo/neox-tiny",
                 "--results-dir", str(out), "--log", str(tmp_path / "log")]) == 2
    assert "non-finite" in capsys.readouterr().err and not list(out.rglob("*.json"))
