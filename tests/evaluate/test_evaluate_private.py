"""What leaves the evaluator about a private split, and determinism over everything scored
(issue 23, items 3 and 6). Each test tries the door as a hostile submitter would, asserts it is
closed, and asserts that the honest path on a public split is unchanged.

The planted split of ``fit_helpers`` is registered twice here: as it is (public) and as a
private copy (the same file, ``private: true``).
"""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from fit_helpers import SPLIT, make_env
from submission_helpers import run_spec, write_submission

from benchmark import registered, suite
from benchmark.api import Scorer
from benchmark.attacks.registry import register, unregister
from benchmark.errors import MembenchError
from benchmark.evaluate import NotDeterministic, RunSpec, run
from benchmark.evaluate.plan import Plan
from benchmark.home import secret_file, secret_key
from benchmark.submissions import evaluate, isolation_problem, validate
from benchmark.submissions.joblog import SCORER_PREFIX

PRIVATE = "test/planted-private"
UNJAILED = isolation_problem() is not None

YAML = ('name: {name}\nversion: "1"\nauthors: ["A. Tester <t@example.org>"]\ndescription: a hostile test\n'
        'threat_model: text only\ncapabilities: {caps}\n')


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        out = make_env(tmp_path_factory, mp)
        entry = next(e for e in registered.entries("splits") if e["id"] == SPLIT)
        suite.registry.register_split({**entry, "id": PRIVATE, "private": True})
        out["private"] = suite.ensure(PRIVATE)
        yield out


def _submission(tmp_path, name, body, caps=()):
    code = ("import sys\nimport numpy as np\nfrom benchmark.api import Scorer\n\n\n"
            f"class S(Scorer):\n    name = {name!r}\n    requires = {tuple(caps)!r}\n\n" + body)
    return write_submission(tmp_path, name, code, YAML.format(name=name, caps=json.dumps(list(caps))))


def _evaluate(folder, split, target, tmp_path, **options):
    return evaluate(folder, run_spec(split, target, tmp_path / "results", **options), log_path=tmp_path / "job.log",
                    allow_unsandboxed=UNJAILED)


def _scored_uids(record, results_dir):
    file = next(results_dir.rglob(record["per_sample"]["file"]))
    return set(pd.read_parquet(file)["uid"])


# --- item 3: labels to fit only from the declared calibration subset, in validate too ----------

FIT_SPY = '''\
    def fit(self, calibration, labels):
        print("FIT", " ".join(calibration.uids))
        self.offset = float(np.mean(labels))

    def score(self, inputs):
        print("SCORE", " ".join(inputs.uids))
        return np.array([float(len(t)) for t in inputs.texts]) + self.offset
'''


def test_validate_hands_a_fit_scorer_labels_of_the_declared_calibration_subset_only(env, tmp_path):
    folder = _submission(tmp_path, "fit_spy", FIT_SPY, caps=("fit",))
    report = validate(folder, run_spec(SPLIT, str(env["plain"])), n=32, log_path=tmp_path / "log",
                      allow_unsandboxed=UNJAILED)
    assert report["ok"], report["error"]
    subset = suite.calibration.select(env["split"], "cal10")  # what evaluate hands the same submission
    lines = [line[len(SCORER_PREFIX):].split() for line in (tmp_path / "log").read_text().splitlines()
             if line.startswith(SCORER_PREFIX)]
    fitted = {u for words in lines if words[0] == "FIT" for u in words[1:]}
    scored = {u for words in lines if words[0] == "SCORE" for u in words[1:]}
    assert fitted and fitted <= set(subset.calibration)  # no label of the evaluated rest crossed
    assert scored and scored <= set(subset.rest)


# --- item 3: every private record on the evaluated rest; the subset keyed by a secret ---------

LENGTH = '''\
    def score(self, inputs):
        return np.array([float(len(t)) for t in inputs.texts])
'''


def test_every_private_record_is_scored_on_the_evaluated_rest_only(env, tmp_path):
    folder = _submission(tmp_path, "text_length", LENGTH)
    target = str(env["plain"])
    private = _evaluate(folder, PRIVATE, target, tmp_path / "private")
    rest = suite.calibration.select(env["private"], "cal10")
    assert private["evaluation_subset"]["name"] == "cal10" and "fit" not in private
    assert _scored_uids(private, tmp_path / "private" / "results") == set(rest.rest)
    (builtin,) = run(RunSpec.build(target, PRIVATE, ["loss"], results_dir=tmp_path / "builtin", progress=False)).records
    assert builtin["evaluation_subset"]["rest_sha256"] == rest.rest_sha256  # built-ins too: one rule in the evaluator
    # the honest path on a public split: the whole split, as before
    public = _evaluate(folder, SPLIT, target, tmp_path / "public")
    assert "evaluation_subset" not in public and public["counts"]["n_samples"] == len(env["split"].samples)


def test_a_private_splits_calibration_subset_is_drawn_with_a_secret_key(env):
    split, public = env["private"], env["split"]
    spec = suite.calibration.subset_spec(split.spec, "cal10")
    uids, texts = split.samples["uid"].tolist(), split.samples["text"].tolist()
    labels = split.labels().reindex(uids).to_numpy()
    keyed = suite.calibration.select(split, "cal10")
    recomputable, _, _ = suite.calibration.assign(uids, texts, labels, spec)  # from the seed in the registry
    assert keyed.keyed and set(keyed.calibration) != set(recomputable)
    assert list(keyed.calibration) == suite.calibration.assign(uids, texts, labels, spec,
                                                               secret=secret_key(f"{PRIVATE}.calibration"))[0]
    assert stat.S_IMODE(os.stat(secret_file(f"{PRIVATE}.calibration")).st_mode) == 0o600
    assert "selection" in keyed.block()
    # a public split keeps the reproducible selection anyone can recompute
    same = suite.calibration.select(public, "cal10")
    assert not same.keyed and list(same.calibration) == suite.calibration.assign(
        uids, texts, labels, suite.calibration.subset_spec(public.spec, "cal10"))[0]


def test_a_planted_link_in_place_of_the_calibration_secret_is_refused(env, tmp_path):
    path = secret_file("test/linked.calibration")
    (tmp_path / "chosen").write_text("00" * 32 + "\n")
    os.symlink(tmp_path / "chosen", path)
    try:
        with pytest.raises(MembenchError, match="cannot be opened"):
            secret_key("test/linked.calibration")
    finally:
        path.unlink()


# --- item 3: job logs of a private split carry the harness's lines only ----------------------

LEAKS = '''\
    def score(self, inputs):
        print("LEAK-OUT", inputs.uids[0])
        print("LEAK-ERR", file=sys.stderr)
        if {raises}:
            class LEAK_TYPE(Exception):
                pass
            raise LEAK_TYPE("LEAK-MESSAGE " + inputs.uids[0])
        return np.array([float(len(t)) for t in inputs.texts])
'''


@pytest.mark.parametrize("raises", [False, True], ids=["prints", "raises"])
def test_a_private_job_log_carries_no_scorer_output_or_message(env, tmp_path, raises):
    folder = _submission(tmp_path, "leaks", LEAKS.format(raises=raises))
    target = str(env["plain"])

    def attempt(split, where):
        try:
            _evaluate(folder, split, target, where)
            return ""
        except MembenchError as exc:
            return str(exc)

    error = attempt(PRIVATE, tmp_path / "private")
    log = (tmp_path / "private" / "job.log").read_text()
    assert "LEAK" not in log and "LEAK" not in error
    assert log and all(line.startswith(("[", "    ")) for line in log.splitlines())  # harness lines only
    assert bool(error) == raises and (not raises or "(exception)" in error)
    # a public split: the submitter sees its own output and messages, as before
    error = attempt(SPLIT, tmp_path / "public")
    log = (tmp_path / "public" / "job.log").read_text()
    assert f"{SCORER_PREFIX}LEAK-OUT" in log and f"{SCORER_PREFIX}LEAK-ERR" in log
    assert ("LEAK-MESSAGE" in error) == raises


# --- item 3: declared capabilities checked against what the run used --------------------------

class _Undeclared(Scorer):
    """Declares the cached statistics only, and asks the model for more."""

    name = "test_undeclared_logprobs"
    requires = ("features",)

    def score(self, inputs):
        stats = inputs.access.logprobs(list(inputs.texts[:2]))
        return np.full(len(inputs.uids), float(np.mean(stats.sample(0)["logprob"])))


def test_a_record_that_declares_less_than_its_run_used_is_refused(env, tmp_path, monkeypatch):
    """The access object refuses an undeclared call; behind it, the evaluator checks the record
    against what the run used, so even an access that let the call through publishes nothing."""
    register(_Undeclared)
    target = str(env["plain"])
    try:
        with pytest.raises(MembenchError, match="asked for|did not declare|not declared|undeclared"):
            run(RunSpec.build(target, SPLIT, [_Undeclared.name], results_dir=tmp_path / "a", progress=False))
        granted = Plan.access_for

        def lenient(plan, handle):  # a broken access layer: grants the model to everyone
            access = granted(plan, handle)
            access.granted |= {"logprobs"}
            return access

        monkeypatch.setattr(Plan, "access_for", lenient)
        with pytest.raises(MembenchError, match="used logprobs but declares only features; its record is refused"):
            run(RunSpec.build(target, SPLIT, ["loss", _Undeclared.name], results_dir=tmp_path / "b", progress=False))
        assert not (tmp_path / "b").exists() or not list((tmp_path / "b").rglob("*.json"))
    finally:
        unregister(_Undeclared.name)
    monkeypatch.undo()
    (record,) = run(RunSpec.build(target, SPLIT, ["loss"], results_dir=tmp_path / "c", progress=False)).records
    assert record["scorer"]["requires"] == ["features"]  # the honest path


# --- item 6: determinism over everything scored ------------------------------------------------

LATE_NOISE = '''\
    def score(self, inputs):
        out = np.array([float(len(t)) for t in inputs.texts])
        out[40:] += np.random.default_rng().random(max(len(out) - 40, 0))  # unseeded, past validate's rows
        return out
'''


def test_a_scorer_nondeterministic_past_the_validation_rows_is_refused_by_evaluate(env, tmp_path):
    folder = _submission(tmp_path, "late_noise", LATE_NOISE)
    target = str(env["plain"])
    report = validate(folder, run_spec(SPLIT, target), n=32, log_path=tmp_path / "log", allow_unsandboxed=UNJAILED)
    assert report["ok"]  # the validation slice cannot see it
    with pytest.raises(NotDeterministic, match=r"scores differ between two runs on the same inputs; first: \w+ \(") as err:
        _evaluate(folder, SPLIT, target, tmp_path / "public")
    n_differ = int(str(err.value).split("deterministic: ")[1].split(" of ")[0])
    assert n_differ >= len(env["split"].samples) - 40 - 1 and not list((tmp_path / "public").rglob("*.json"))
    # on a private split the refusal names how many, not which (the scorer chooses which)
    with pytest.raises(NotDeterministic) as err:
        _evaluate(folder, PRIVATE, target, tmp_path / "private")
    assert "first:" not in str(err.value) and not any(u in str(err.value) for u in env["private"].samples["uid"])
    # the honest path: the same code seeded passes both runs and publishes one record
    honest = _submission(tmp_path, "late_seeded", LATE_NOISE.replace("default_rng()", "default_rng(0)"))
    record = _evaluate(honest, SPLIT, target, tmp_path / "honest")
    assert record["counts"]["n_samples"] == len(env["split"].samples)
