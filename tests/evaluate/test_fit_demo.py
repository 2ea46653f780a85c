"""MIA-Tuner on the demo target (trained once per session and cached): it trains within its
budget on the calibration subset, and every other record of the split is recomputed on the
same evaluated rest."""

from __future__ import annotations

import pytest

from benchmark.results.gate import validate_dir
from benchmark import attacks, results, suite, targets
from benchmark.evaluate import RunSpec, run

pytestmark = pytest.mark.timeout(2400)


@pytest.mark.slow
def test_mia_tuner_trains_within_its_budget_on_the_demo_target(tmp_path):
    targets.ensure_demo_target(progress=False)
    budget = attacks.FitBudget(steps=12, forward_tokens=300_000, backward_tokens=300_000, seconds=1800)
    spec = "mia_tuner:epochs=4,num_virtual_tokens=10,max_train_samples=48,learning_rate=0.01"
    tuner, loss = run(RunSpec.build("demo/neox-tiny", targets.DEMO_SPLIT, [spec, "loss"], results_dir=tmp_path,
                                    progress=False, fit_budget=budget)).records
    subset = suite.calibration.select(suite.ensure(targets.DEMO_SPLIT), "cal80")
    assert tuner["evaluation_subset"]["name"] == "cal80" and tuner["evaluation_subset"]["n"] == len(subset.rest)
    assert tuner["fit"]["n_calibration"] == len(subset.calibration)
    usage = tuner["fit"]["usage"]
    assert usage["training_steps"] == 4 * 3 <= budget.steps  # 24 pairs in batches of 8, four epochs
    assert 0 < usage["forward_tokens"] <= budget.forward_tokens and usage["backward_tokens"] <= budget.backward_tokens
    assert usage["wall_seconds"] <= budget.seconds
    curve = tuner["scorer"]["details"]["objective_by_epoch"]
    assert curve[-1] < curve[0]  # it learns: the objective falls over the epochs
    # loss is there on the whole split and, recomputed, on the same 20%
    assert loss["counts"]["n_samples"] == len(subset.calibration) + len(subset.rest)
    on_rest = results.read(results.record_path(tmp_path, targets.DEMO_SPLIT, "demo/neox-tiny", "loss", subset="cal80"))
    assert on_rest["evaluation_subset"]["rest_sha256"] == tuner["evaluation_subset"]["rest_sha256"]
    assert validate_dir(tmp_path).ok
