"""The one evaluator: a submitted scorer (in the jail) and the same code as a built-in give the
same record apart from provenance; the in-process model access carries no label; a RunSpec is
frozen and resolved once; a fault of any scorer publishes nothing; the worker publishes through
an injected hook and never imports the site."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import SPLIT, make_env
from submission_helpers import run_spec, write_submission

from benchmark import attacks, evaluate, results
from benchmark.api import Scorer
from benchmark.attacks.registry import register, unregister
from benchmark.errors import MembenchError
from benchmark.evaluate import RunSpec, run
from benchmark.submissions import evaluate as evaluate_submission
from benchmark.submissions import isolation_problem

SAME_CODE = '''\
import numpy as np
from benchmark.api import Scorer


class {cls}(Scorer):
    """Mean of the lowest third of the token log-probabilities (a fixed Min-K%)."""

    name = "{name}"
    requires = {requires}

    def fit(self, calibration, labels):
        y = np.asarray(labels)
        self.offset = float(y.mean())  # something learnt from the calibration labels alone

    def score(self, inputs):
        out = []
        for i in range(len(inputs.uids)):
            lp = np.sort(inputs.features.sample(i)["logprob"])
            out.append(float(lp[: max(1, len(lp) // 3)].mean()) if len(lp) else float("nan"))
        return np.asarray(out) + getattr(self, "offset", 0.0)
'''

YAML = ('name: {name}\nversion: "1"\nauthors: ["A. Tester <t@example.org>"]\ndescription: the same code twice\n'
        'threat_model: gray-box; token statistics\ncapabilities: {caps}\n')

PROVENANCE = ("provenance", "submission", "usage", "schema")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        yield make_env(tmp_path_factory, mp)


def _as_builtin(folder: Path):
    """The submission's own scorer.py, imported here and registered as a built-in scorer."""
    spec = importlib.util.spec_from_file_location(f"same_code_{folder.name}", folder / "scorer.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a built-in's code hash is its module's file
    spec.loader.exec_module(module)
    (cls,) = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, Scorer) and v is not Scorer]
    return register(cls)


def _comparable(record: dict) -> dict:
    """A record less what says who ran it and how (provenance): the evaluator's figures stay."""
    out = {k: v for k, v in record.items() if k not in PROVENANCE}
    out["scorer"] = {k: v for k, v in record["scorer"].items() if k not in ("kind", "owner", "code_sha256")}
    # the file name follows the record's key, which holds a submission's version (provenance)
    out["per_sample"] = {k: v for k, v in record["per_sample"].items() if k != "file"}
    if "fit" in out:
        out["fit"] = {**out["fit"], "usage": {k: v for k, v in out["fit"]["usage"].items() if k != "wall_seconds"}}
    return out


@pytest.mark.parametrize("caps, calibration", [(("features",), None), (("features", "fit"), "cal10")],
                         ids=["plain", "fit"])
def test_a_submission_and_the_same_code_as_a_builtin_give_the_same_record(env, tmp_path, caps, calibration):
    name = "same_code_" + ("fit" if calibration else "plain")
    folder = write_submission(tmp_path, name, SAME_CODE.format(cls="Same", name=name, requires=caps),
                              YAML.format(name=name, caps=json.dumps(list(caps))))
    target = str(env["plain"])
    cls = _as_builtin(folder)
    try:
        (builtin,) = run(RunSpec.build(target, SPLIT, [name], results_dir=tmp_path / "builtin", progress=False,
                                       calibration=calibration)).records
    finally:
        unregister(cls.name)
    submitted = evaluate_submission(folder, run_spec(SPLIT, target, tmp_path / "submitted", calibration=calibration),
                                    log_path=tmp_path / "log", allow_unsandboxed=isolation_problem() is not None)
    assert builtin["scorer"]["kind"] == "attack" and submitted["scorer"]["kind"] == "submission"
    assert submitted["provenance"]["sandbox"] and "usage" in builtin["provenance"]
    assert _comparable(submitted) == _comparable(builtin)
    # the same scores, uids and truncation flags, bit for bit
    assert submitted["per_sample"]["sha256"] == builtin["per_sample"]["sha256"]
    if calibration:
        assert submitted["evaluation_subset"]["name"] == calibration and submitted["fit"]["calibration_members"] > 0


class _LabelHunter(Scorer):
    """Walks everything its access object holds, looking for labels or a way to them."""

    name = "test_label_hunter"
    requires = ("features", "reference")
    found: list = []

    def score(self, inputs):
        seen, todo = set(), [("access", inputs.access)]
        while todo:
            where, obj = todo.pop()
            if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, np.ndarray)):
                continue
            seen.add(id(obj))
            if isinstance(obj, (types.ModuleType, types.FunctionType, types.MethodType, type)) or \
                    type(obj).__module__.startswith(("torch", "transformers", "tokenizers")):
                continue  # code, and the model with its tokenizer: weights, not a split
            if isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
                if "label" in getattr(obj, "columns", ()) or getattr(obj, "name", None) == "label":
                    type(self).found.append(where)
                continue
            if callable(getattr(obj, "labels", None)):
                type(self).found.append(where)
            path = getattr(obj, "path", None)
            if isinstance(path, (str, Path)) and (Path(path) / "labels.parquet").exists():
                type(self).found.append(where + ".path")
            children = vars(obj).items() if hasattr(obj, "__dict__") else ()
            if isinstance(obj, dict):
                children = obj.items()
            elif isinstance(obj, (list, tuple, set)):
                children = enumerate(obj)
            todo += [(f"{where}.{k}", v) for k, v in children]
        return np.zeros(len(inputs.uids))


def test_the_in_process_model_access_carries_no_label(env, tmp_path):
    """Issue 26, item 8: a built-in scorer finds no label, no split and no split folder through
    the access object it is given (only the split's texts, for the reference's feature cache)."""
    register(_LabelHunter)
    _LabelHunter.found = []
    target = str(env["plain"])
    try:
        run(RunSpec.build(target, SPLIT, [_LabelHunter.name], results_dir=tmp_path, progress=False,
                          reference=str(env["chat"])))
    finally:
        unregister(_LabelHunter.name)
    assert _LabelHunter.found == []
    access = evaluate.MeteredModelAccess(None, split_texts=evaluate.SplitTexts.of(env["split"]))
    assert not hasattr(access, "split") and list(access.split_texts.samples.columns) == ["uid", "text"]


def test_a_run_spec_is_frozen_and_resolved_once(env, tmp_path, monkeypatch):
    monkeypatch.setattr(attacks, "FEATURE_SCORERS", (*attacks.FEATURE_SCORERS, "recall"))  # one that needs a pool
    spec = RunSpec.build(str(env["plain"]), SPLIT, results_dir=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.split = "other"  # type: ignore[misc]
    assert spec.pool is None and spec.reference is None  # the planted split has no pool; a local target no base
    assert [s["scorer"] for s in spec.skipped] == ["recall"] and ("recall", {}) not in spec.scorers
    assert spec.scorers[0] == ("loss", {}) and spec.diagnostics_from == tmp_path
    report = run(dataclasses.replace(spec, scorers=(("loss", {}), ("min_k", {"k": 0.1}))))
    assert [r["scorer"]["name"] for r in report.records] == ["loss", "min_k(k=0.1)"]
    assert report.skipped == spec.skipped and set(report.usage) == {"forward_passes", "forward_tokens", "shards_cached"}
    assert len(report.paths) == 2 and all(p.is_file() for p in report.paths) and report.derived == []
    again = run(dataclasses.replace(spec, scorers=(("zlib", {}),)))
    assert again.usage["forward_passes"] == 0 and again.usage["shards_cached"] > 0  # the cached feature pass
    for bad, says in [({"scorers": ["min_k:k=7"]}, "k must be in"), ({"calibration": "cal3"}, "cal3"),
                      ({"pool": tmp_path / "nope.parquet"}, "does not exist"), ({"batch_tokens": 0}, "positive")]:
        with pytest.raises(MembenchError, match=says):
            RunSpec.build(str(env["plain"]), SPLIT, bad.pop("scorers", None), results_dir=tmp_path, **bad)


class _Raises(Scorer):
    name = "test_plain_raises"

    def score(self, inputs):
        raise ZeroDivisionError("boom")


def test_a_scorer_that_fails_publishes_nothing_of_the_run(env, tmp_path):
    """Every scorer is scored and every record built before anything is written: loss, scored
    before the failing scorer, is not published either."""
    register(_Raises)
    try:
        with pytest.raises(MembenchError, match="test_plain_raises: score\\(\\) raised ZeroDivisionError: boom"):
            run(RunSpec.build(str(env["plain"]), SPLIT, ["loss", _Raises.name], results_dir=tmp_path / "r",
                              progress=False))
    finally:
        unregister(_Raises.name)
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("*.json"))


def test_the_worker_publishes_through_its_hook_and_never_imports_the_site(tmp_path):
    from synthetic_results import synthetic_record
    from benchmark.submissions import worker
    from benchmark.submissions.queue import Queue

    tree = ast.parse(Path(worker.__file__).read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any("site" in m.split(".") for m in imported), imported
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "scorer.py").write_text("x = 1\n")
    (folder / "submission.yaml").write_text(YAML.format(name="staged", caps="[]"))
    q = Queue(tmp_path / "q")
    job_id = q.submit_folder(folder, split="demo/pydoc", target="demo/neox-tiny")
    record, uids, scores = synthetic_record("demo/pydoc", "demo/neox-tiny", "staged", n=40)
    results.write(q.job_dir(job_id) / "results", record, uids, scores)
    calls = []
    written = worker.publish(q, job_id, worker.WorkerConfig(results_dir=tmp_path / "published",
                                                            on_publish=lambda *args: calls.append(args)))
    # the hook runs on a staging copy beside the published folder, before the published folder
    # changes (benchmark.submissions.publication): a hook that fails publishes nothing
    ((folder, hooked),) = calls
    assert folder.parent == tmp_path and folder.name.startswith(".published.publishing-")
    assert [p.relative_to(folder) for p in hooked] == [p.relative_to(tmp_path / "published") for p in written]
    assert len(written) == 1 and written[0].is_file() and not folder.exists() and q.get(job_id)["published"]


def test_the_command_lines_publish_hook_gates_the_written_files_before_it_builds_the_site(tmp_path, monkeypatch):
    from benchmark.commands import worker as command

    calls = []
    monkeypatch.setattr(command.gate, "publish", lambda folder, only: calls.append(("gate", folder, only)))
    monkeypatch.setattr(command.site, "build", lambda folder, out: calls.append(("site", folder, out)))
    written = [tmp_path / "r" / "a.json"]
    command.publish_hook(tmp_path / "site")(tmp_path / "r", written)
    assert calls == [("gate", tmp_path / "r", written), ("site", tmp_path / "r", tmp_path / "site")]
    calls.clear()
    command.publish_hook(None)(tmp_path / "r", written)  # --no-site: the gate still runs
    assert calls == [("gate", tmp_path / "r", written)]


def test_validation_reports_the_check_a_run_failed_at(env, tmp_path):
    """validate runs the submission through the same evaluator functions; a class whose
    ``requires`` differs from submission.yaml fails at that check, named."""
    from benchmark.submissions import validate

    folder = write_submission(tmp_path, "mismatch", SAME_CODE.format(cls="M", name="mismatch", requires=("features",)),
                              YAML.format(name="mismatch", caps=json.dumps(["features", "logprobs"])))
    report = validate(folder, run_spec(SPLIT, str(env["plain"])), n=16, log_path=tmp_path / "log",
                      allow_unsandboxed=isolation_problem() is not None)
    assert not report["ok"] and report["checks"][-1]["check"] == "declared capabilities match requires"
    assert "declares capabilities ['features', 'logprobs']" in report["error"]
    assert [c["check"] for c in report["checks"][:-1]] == ["metadata schema and name"]
