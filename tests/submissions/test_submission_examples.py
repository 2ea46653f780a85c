"""The example submissions in submissions/: valid, sandboxed, and scoring what they claim."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from submission_helpers import run_spec

from benchmark import attacks, evaluate as evaluator, features, suite, targets
from benchmark.submissions import evaluate, isolation_problem, load, validate

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent for p in (REPO / "submissions").glob("*/submission.yaml"))

pytestmark = pytest.mark.skipif(isolation_problem() is not None, reason="no full jail here")


def test_at_least_three_examples_with_distinct_capabilities():
    subs = [load(p) for p in EXAMPLES]
    assert len(subs) >= 3
    caps = {s.capabilities for s in subs}
    assert ("features",) in caps and () in caps and any("logprobs" in c for c in caps)


def test_readme_example_is_the_real_file_and_short():
    readme = (REPO / "submissions" / "README.md").read_text()
    code = re.search(r"```python\n(import numpy.*?)```", readme, re.S).group(1)
    assert code == (REPO / "submissions" / "min_k_30" / "scorer.py").read_text()
    assert len(code.strip().splitlines()) < 20


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate(example, tmp_path):
    report = validate(example, run_spec("demo/pydoc", "demo/neox-tiny"), n=32, log_path=tmp_path / "log")
    assert report["ok"], report["error"]
    assert [c["check"] for c in report["checks"]][-2:] == ["determinism", "declared against used capabilities"]


@pytest.mark.slow
def test_min_k_30_equals_the_builtin_min_k_at_k_0_3(tmp_path):
    targets.ensure_demo_target(progress=False)
    record = evaluate(REPO / "submissions" / "min_k_30", run_spec("demo/pydoc", "demo/neox-tiny", tmp_path),
                      log_path=tmp_path / "log")
    assert record["scorer"]["kind"] == "submission" and record["submission"]["params"] == {"k": 0.3}
    assert record["provenance"]["sandbox"]["isolated"]
    split = suite.ensure("demo/pydoc")
    stats = features.get_features(targets.load_target("demo/neox-tiny"), split)
    inputs = attacks.ScoringInput(uids=split.samples["uid"].tolist(), texts=split.samples["text"].tolist(),
                                  features=stats)
    builtin = attacks.get_scorer("min_k", k=0.3).score(inputs)
    written = pd.read_parquet(next(tmp_path.rglob("min_k_30-*.scores.parquet")))
    assert written["uid"].tolist() == inputs.uids
    np.testing.assert_allclose(written["score"].to_numpy(), builtin, rtol=1e-12)
    assert record["metrics"]["auc"] > 0.8  # the demo target remembers its members
    # truncation is flagged per sample and counted, as in a built-in's record
    assert written["truncated"].tolist() == stats.truncated().tolist()
    assert record["counts"]["n_truncated"] == int(stats.truncated().sum())
    assert record["counts"]["context_rule"] == record["target"]["context_rule"]


@pytest.mark.slow
def test_lowercase_ratio_is_metered(tmp_path):
    record = evaluate(REPO / "submissions" / "lowercase_ratio", run_spec("demo/pydoc", "demo/neox-tiny", tmp_path),
                      log_path=tmp_path / "log")
    usage = record["usage"]
    assert usage["capabilities_used"] == ["features", "logprobs"] and usage["calls"] == {"logprobs": 1}
    assert usage["target_forward_texts"] == record["counts"]["n_samples"] and usage["target_forward_tokens"] > 0


def test_text_only_example_has_no_target(tmp_path):
    record = evaluate(REPO / "submissions" / "zlib_ratio_blind", run_spec("demo/pydoc", "demo/neox-tiny", tmp_path),
                      log_path=tmp_path / "log")
    assert record["target"]["id"] == "none" and record["scorer"]["requires"] == []
    assert 0.3 < record["metrics"]["auc"] < 0.7  # random assignment: no shift for text to find


@pytest.mark.slow
def test_validation_slice_keeps_the_token_ids():
    """validate scores a slice of the split: it must carry what evaluate sends (token ids too)."""
    from benchmark.submissions.sandboxed import SandboxedHandle

    handle = SandboxedHandle(load(REPO / "submissions" / "min_k_30"), "", log_path=Path("unused.log"))
    plan = evaluator.load(run_spec("demo/pydoc", "demo/neox-tiny", limit=8), [handle])
    stats = plan.inputs_for(handle, None, plan.rows).features
    assert len(stats) == 8 and stats.token_ids is not None and len(stats.token_ids) == stats.offsets[-1]


OFFSETS_SCORER = '''import numpy as np
from benchmark.api import Scorer


class S(Scorer):
    name = "offsets_probe"
    requires = ("features",)

    def score(self, inputs):
        f = inputs.features
        out = []
        for i, text in enumerate(inputs.texts):
            ends = f.sample(i)["char_end"]
            # the last scored token ends where the scored part of the text ends; truncated texts negative
            last = float(ends[-1]) if len(ends) else 0.0
            assert len(f.scored_text(i, text)) <= len(text)
            out.append(-last if f.truncated()[i] else last)
        return np.array(out, float)
'''


@pytest.mark.slow
def test_a_jailed_scorer_gets_character_offsets_and_truncation(tmp_path):
    """The features a sandboxed scorer receives carry what a built-in's do: each token's end
    offset in the text and which texts the context rule cut (validation and evaluation alike)."""
    from submission_helpers import write_submission

    targets.ensure_demo_target(progress=False)
    folder = write_submission(tmp_path, "offsets_probe", OFFSETS_SCORER,
                              'name: offsets_probe\nversion: "1"\nauthors: [t]\ndescription: d\nthreat_model: t\n'
                              'capabilities: [features]\n')
    report = validate(folder, run_spec("demo/pydoc", "demo/neox-tiny"), log_path=tmp_path / "vlog")
    assert report["ok"], report
    record = evaluate(folder, run_spec("demo/pydoc", "demo/neox-tiny", tmp_path / "r"), log_path=tmp_path / "log")
    stats = features.get_features(targets.load_target("demo/neox-tiny"), suite.ensure("demo/pydoc"))
    expected = [(-1 if t else 1) * float(stats.sample(i)["char_end"][-1]) for i, t in enumerate(stats.truncated())]
    written = pd.read_parquet(next((tmp_path / "r").rglob("offsets_probe-*.scores.parquet")))
    assert written["score"].tolist() == expected
    assert record["counts"]["n_truncated"] == int(stats.truncated().sum())
