"""A submitted scorer that declares `fit`, in the jail: it fits on the calibration subset (whose
labels are the only ones that cross the pipe) and is scored on the evaluated rest; its model
use inside fit counts against the fit budget; reading labels outside fit, or passing the
budget, is one line and publishes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fit_helpers import SPLIT, make_env

from benchmark.results.gate import validate_dir
from benchmark import results, suite
from benchmark.cli import main
from benchmark.evaluate import RunSpec, run
from benchmark.submissions import isolation_problem

YAML = """\
name: {name}
version: "1"
authors: ["A. Tester <t@example.org>"]
description: a trainable test scorer
threat_model: gray-box; token statistics and a labelled calibration subset
capabilities: {caps}
"""

SPY = """\
import numpy as np
from benchmark.api import Scorer

class Spy(Scorer):
    name = "{name}"
    requires = {caps}

    def fit(self, calibration, labels):
        y = np.asarray(labels)
        self.seen = set(calibration.uids)
        self.summary = len(y) + y.sum() / 100.0
        self.n_features = len(calibration.features)
{extra_fit}

    def score(self, inputs):
        overlap = sum(u in self.seen for u in inputs.uids)
        return np.full(len(inputs.uids), self.summary + 1000.0 * overlap + 1e6 * (self.n_features != len(self.seen)))
"""

PEEK = """\
import numpy as np
from benchmark.api import Scorer

class Peek(Scorer):
    name = "fit_peek"
    requires = ("features", "fit")

    def fit(self, calibration, labels):
        self.kept = labels

    def score(self, inputs):
        return np.asarray(self.kept, dtype=float)[: len(inputs.uids)]
"""


def _submission(root, name, source, caps):
    d = root / name
    d.mkdir()
    (d / "scorer.py").write_text(source)
    (d / "submission.yaml").write_text(YAML.format(name=name, caps=json.dumps(list(caps))))
    return d


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        yield make_env(tmp_path_factory, mp)


def _evaluate(env, folder, out, *extra):
    return main(["evaluate", str(folder), "--split", SPLIT, "--target", str(env["plain"]), "--results-dir", str(out),
                 *extra, *([] if isolation_problem() is None else ["--allow-unsandboxed"])])


def test_a_submission_fits_in_the_jail_on_calibration_labels_only(env, tmp_path, capsys):
    out = tmp_path / "r"
    run(RunSpec.build(str(env["plain"]), SPLIT, ["loss"], results_dir=out, progress=False))  # a whole-split record
    folder = _submission(tmp_path, "fit_spy", SPY.format(name="fit_spy", caps=("features", "fit"), extra_fit=""),
                         ("features", "fit"))
    assert _evaluate(env, folder, out, "--calibration", "cal80", "--json") == 0, capsys.readouterr().err
    record = json.loads(capsys.readouterr().out)
    subset = suite.calibration.select(env["split"], "cal80")
    labels = env["split"].labels()
    assert record["evaluation_subset"]["name"] == "cal80" and record["fit"]["n_calibration"] == len(subset.calibration)
    path = results.record_path(out, SPLIT, record["target"]["id"], "fit_spy", subset="cal80")
    scores = results.read_scores(path, results.read(path))
    assert sorted(scores.index) == sorted(subset.rest)  # scored on the evaluated rest only
    # what fit() got: exactly the calibration rows and their labels, and no evaluated uid
    want = len(subset.calibration) + labels.reindex(list(subset.calibration)).sum() / 100.0
    assert np.allclose(scores.to_numpy(), want)
    assert "fit" in record["usage"]["capabilities_used"]
    # loss is recomputed on the same rest, beside it
    loss_rest = results.read(results.record_path(out, SPLIT, record["target"]["id"], "loss", subset="cal80"))
    assert loss_rest["evaluation_subset"]["rest_sha256"] == record["evaluation_subset"]["rest_sha256"]
    assert validate_dir(out).ok


def test_validate_runs_fit_in_the_jail(env, tmp_path, capsys):
    folder = _submission(tmp_path, "fit_spy2", SPY.format(name="fit_spy2", caps=("features", "fit"), extra_fit=""),
                         ("features", "fit"))
    code = main(["validate", str(folder), "--split", SPLIT, "--target", str(env["plain"]), "--json",
                 *([] if isolation_problem() is None else ["--allow-unsandboxed"])])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"], report
    assert not any("never used" in w for w in report["warnings"])


def _last_error(err: str) -> str:
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1].startswith("membench: error: ") and "Traceback" not in err, err
    assert sum(line.startswith("membench:") for line in lines) == 1, err
    return lines[-1]


def test_labels_outside_fit_in_the_jail_is_one_line_and_publishes_nothing(env, tmp_path, capsys):
    out = tmp_path / "r"
    folder = _submission(tmp_path, "fit_peek", PEEK, ("features", "fit"))
    assert _evaluate(env, folder, out) == 2
    assert "asked for labels outside fit()" in _last_error(capsys.readouterr().err)
    assert not out.exists() or not list(out.rglob("*.json"))


def test_the_fit_budget_holds_in_the_jail(env, tmp_path, capsys):
    out = tmp_path / "r"
    hungry = "        for _ in range(50):\n            calibration.access.logprobs(calibration.texts)"
    folder = _submission(tmp_path, "fit_hungry", SPY.format(name="fit_hungry", caps=("features", "logprobs", "fit"),
                                                            extra_fit=hungry), ("features", "logprobs", "fit"))
    assert _evaluate(env, folder, out, "--fit-budget", "forward_tokens=20000") == 2
    line = _last_error(capsys.readouterr().err)
    assert "exceeded its fit budget: forward tokens" in line and "cap of 20,000" in line
    assert not out.exists() or not list(out.rglob("*.json"))
