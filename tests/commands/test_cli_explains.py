"""The CLI says what its numbers mean and refuses what would mislead (issue 27 items 6 and 7):
verdicts with their implication, the unit of n, an operating point that misses its target,
fp16 on a CPU, the grid's priority, a recipe's dependency chain; a submission whose class is
named otherwise, reserved split namespaces, and `run --file` keyed by content."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from submission_helpers import text_scorer_submission

from benchmark import finetune, progress, suite, targets
from benchmark.cli import main
from benchmark.commands import notes
from benchmark.commands.grid import summary_text
from benchmark.errors import MembenchError
from benchmark.finetune.plan import chain_text
from benchmark.grid import priority
from benchmark.submissions import isolation_problem


def _write_jsonl(path, members, nonmembers):
    rows = [{"text": t, "label": 1} for t in members] + [{"text": t, "label": 0} for t in nonmembers]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


# --- item 6: verdicts, units, operating points -------------------------------------------------

def test_diagnose_says_what_a_shifted_verdict_implies_and_what_to_do(tmp_path, capsys):
    long = [f"member passage {i} " + "with many extra words in it " * 12 for i in range(30)]
    short = [f"short text {i}" for i in range(30)]
    data = _write_jsonl(tmp_path / "shifted.jsonl", long, short)
    assert main(["diagnose", "--file", str(data)]) == 0
    out = capsys.readouterr().out
    assert "verdict: SHIFTED" in out
    meaning = next(line for line in out.splitlines() if line.startswith("what it means:"))
    assert "distribution shift, not membership" in meaning
    nxt = next(line for line in out.splitlines() if line.startswith("next:"))
    assert "excess over the blind AUC" in nxt and "clean split" in nxt


def test_every_verdict_has_an_implication_and_a_next_step():
    from benchmark.diagnostics.verdict import VERDICTS, explain

    for name in VERDICTS:
        implies, nxt = explain(name, "--split x/y")
        assert implies and nxt
    assert "--split x/y" in explain("clean", "--split x/y")[1]


def _group_record(split_id, n=40, rows=400):
    return {"scorer": {"name": "user_mean_loss"}, "split": {"id": split_id},
            "counts": {"n_scored": n, "n_samples": n, "unit": "group", "n_rows": rows}}


def test_n_of_a_group_scorer_names_its_unit():
    assert notes.n_cell(_group_record("bookmia/snippets")) == "40 books"
    text_level = {"scorer": {"name": "loss"}, "split": {"id": "demo/pydoc"}, "counts": {"n_scored": 390}}
    assert notes.n_cell(text_level) == "390"
    lines = notes.unit_lines([text_level, _group_record("bookmia/snippets")])
    assert len(lines) == 1 and "counts books, not texts" in lines[0] and "from 400 texts" in lines[0]
    assert notes.unit_lines([text_level]) == []


def test_a_user_level_split_counts_users(monkeypatch):
    spec = suite.get_split("demo/pydoc")
    user_level = dataclasses.replace(spec, fields={**spec.fields, "group": "group"})  # a per-user recipe's split
    monkeypatch.setattr(notes.suite, "get_split", lambda split_id: user_level)
    assert notes.n_cell(_group_record("finetune/any")) == "40 users"


def _calibrated(fpr, n=175, target=0.05):
    return {"scorer": {"name": "calibrated"},
            "operating_point": {"threshold": 0.0, "target_fpr": target,
                                "evaluated": {"tpr": 0.3, "fpr": fpr, "n_members": n, "n_nonmembers": n}}}


def test_an_operating_point_that_misses_its_target_on_the_rest_is_warned():
    (warning,) = notes.operating_point_warnings([_calibrated(14 / 175)])
    assert "misses its target" in warning and "FPR 0.080 against the target 0.05" in warning
    assert "14 of 175" in warning and "within sampling noise" in warning
    (far,) = notes.operating_point_warnings([_calibrated(30 / 175)])
    assert "more than sampling noise explains" in far
    assert notes.operating_point_warnings([_calibrated(8 / 175)]) == []  # met: nothing to say
    assert notes.operating_point_warnings([{"scorer": {"name": "loss"}}]) == []


# --- item 6: fp16 on a CPU, the grid's priority, the recipe chain -------------------------------

def test_fp16_on_a_cpu_is_refused_before_anything_is_built(capsys):
    with pytest.raises(MembenchError, match="float16 on cpu"):
        targets.load_target("demo/neox-tiny", device="cpu", dtype="float16")
    assert not targets.demo_target_built()  # refused before the demo target would be trained
    targets.check_dtype("cpu", "bfloat16")  # has CPU kernels: allowed
    targets.check_dtype("cuda", "float16")
    assert main(["targets", "build", "pythia-70m", "--random-init", "--dtype", "float16"]) == 2
    assert "--dtype float32" in capsys.readouterr().err


def test_the_grid_states_and_sets_its_workers_priority(capsys):
    assert "niceness 15 (Ray's default)" in priority.describe(15)
    with pytest.raises(MembenchError, match="0 \\(normal\\) to 19"):
        priority.check(20)
    assert main(["grid", "--targets", "demo/neox-tiny", "--splits", "demo/pydoc", "--priority", "-1"]) == 2
    assert "--priority" in capsys.readouterr().err
    # a job lowers its own priority to the chosen niceness (in a child: this process keeps its own)
    code = "from benchmark.grid import priority; import os; print(priority.apply(os.nice(0) + 2) - os.nice(0) + 2)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "2", out.stderr
    report = {"jobs": [{"target": "t", "split": "s", "status": "done", "attempts": 1, "seconds": 1.0,
                        "tokens_per_s": None, "scorers": [], "aucs": {}, "workers": [{"pid": 1, "niceness": 15}]}],
              "skipped": [], "totals": {"jobs": 1, "done": 1, "already_done": 0, "failed": 0, "retries": 0,
                                        "seconds": 1.0, "forward_tokens": 0, "tokens_per_s": None}}
    assert "workers ran at niceness 15" in summary_text(report)


def test_a_recipes_dependency_chain_comes_first_with_last_timings(monkeypatch, capsys):
    table = finetune.recipes()
    text = chain_text(table["pii-gen-continuation"], table)
    lines = text.splitlines()
    assert "2 step(s)" in lines[0]
    assert lines[1].strip().startswith("1/2 ft/pydoc-pii-base: pretrain recipe") and "to train" in lines[1]
    assert "not timed in this home yet" in lines[1]
    assert lines[2].strip().startswith("2/2 ft/pii-gen-continuation")
    progress.record_timing("target ft/pydoc-pii-base", 65)
    assert "took 1 min 5 s last time here" in chain_text(table["pii-gen-continuation"], table)

    def stop(*args, **kwargs):
        raise MembenchError("stopped before training (test)")

    monkeypatch.setattr("benchmark.commands.finetune.finetune_and_compare", stop)
    assert main(["finetune", "pii-gen-continuation"]) == 2
    out = capsys.readouterr().out
    assert "1/2 ft/pydoc-pii-base" in out  # printed before anything trains


# --- item 7: names and namespaces ----------------------------------------------------------------

@pytest.mark.skipif(isolation_problem() is not None, reason="no full jail here")
def test_validate_refuses_a_class_named_unlike_the_submission(tmp_path, capsys):
    d = text_scorer_submission(tmp_path, "by_length", class_name="something_else")
    assert main(["validate", str(d), "-n", "16", "--json"]) == 2
    out = capsys.readouterr()
    report = json.loads(out.out)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["check"] for c in failed] == ["scorer class name matches submission.yaml"]
    assert "'by_length'" in out.err and "'something_else'" in out.err and "set name = 'by_length'" in out.err


@pytest.mark.parametrize("name", ["demo/mine", "mimir/mine", "wikimia/x", "wikimia_2025/x", "WikiMIA99/x",
                                  "control/x", "finetune/x", "file/x", "bookmia/x", "copyright-traps/x"])
def test_suite_add_refuses_reserved_namespaces(tmp_path, capsys, name):
    data = _write_jsonl(tmp_path / "d.jsonl", [f"member {i} text" for i in range(5)], [f"other {i} text" for i in range(5)])
    assert main(["suite", "add", name, "--file", str(data)]) == 2
    err = capsys.readouterr().err
    assert "reserved namespace" in err and "mylab/" in err
    assert name not in suite.splits()


def test_suite_add_accepts_a_namespace_of_ones_own(tmp_path):
    data = _write_jsonl(tmp_path / "d.jsonl", [f"member {i} text" for i in range(5)], [f"other {i} text" for i in range(5)])
    assert main(["suite", "add", "mylab/demo-like", "--file", str(data)]) == 0


# --- item 7: run --file by content -----------------------------------------------------------------

def _demo_as_file(path, fmt="jsonl", rows=None):
    split = suite.ensure("demo/pydoc")
    labels = split.labels()
    frame = pd.DataFrame({"text": split.samples["text"], "label": split.samples["uid"].map(labels).astype(int)})
    if rows is not None:
        frame = frame.iloc[rows]
    if fmt == "csv":
        frame.iloc[::-1].to_csv(path, index=False)  # another format and order: the same content
    else:
        path.write_text("\n".join(json.dumps(r) for r in frame.to_dict("records")) + "\n")
    return path


def _run_file(path, *extra):
    return ["run", "--target", "demo/neox-tiny", "--file", str(path), "--scorer", "loss", "--json", *extra]


@pytest.mark.slow
def test_run_file_on_a_registered_splits_content_is_that_splits_run(tmp_path, capsys):
    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "loss", "--json"]) == 0
    capsys.readouterr()
    assert main(_run_file(_demo_as_file(tmp_path / "pydoc.jsonl"))) == 0
    out = capsys.readouterr()
    (record,) = json.loads(out.out)
    assert record["split"]["id"] == "demo/pydoc" and record["split"]["label_validity"]["valid"]
    assert record["provenance"]["usage"]["feature_forward_tokens"] == 0  # no forward pass: its features


@pytest.mark.slow
def test_run_file_is_keyed_by_content_and_marked_invalid_unless_declared(tmp_path, capsys):
    first = _demo_as_file(tmp_path / "half.jsonl", rows=slice(0, 120))
    assert main(_run_file(first)) == 0
    out = capsys.readouterr()
    (record,) = json.loads(out.out)
    split_id = record["split"]["id"]
    assert split_id.startswith("file/") and record["provenance"]["usage"]["feature_forward_tokens"] > 0
    assert record["split"]["label_validity"] == {"valid": False, "allowed_invalid": True}
    assert main([a for a in _run_file(first) if a != "--json"]) == 0  # the table: the pair shown invalid
    text = capsys.readouterr().out
    assert "INVALID pair" in text and "--valid-for demo/neox-tiny" in text
    # the same content in another file, format and order: the same split, no forward pass
    again = _demo_as_file(tmp_path / "other-name.csv", fmt="csv", rows=slice(0, 120))
    assert main(_run_file(again, "--valid-for", "demo/neox-tiny")) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["split"]["id"] == split_id and record["provenance"]["usage"]["feature_forward_tokens"] == 0
    assert record["split"]["label_validity"]["valid"] is True  # declared this time


def test_valid_for_goes_with_file(capsys):
    assert main(["run", "--target", "demo/neox-tiny", "--split", "demo/pydoc", "--valid-for", "x"]) == 2
    assert "go with --file" in capsys.readouterr().err


def test_a_child_process_sees_the_home_of_its_test():
    code = "from benchmark import home; print(home.home())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == os.environ["MEMBENCH_HOME"]
