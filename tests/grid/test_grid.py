"""`membench grid` on a local Ray with 2 CPU workers: 2 tiny targets x 2 tiny splits.

One Ray session and one grid run for the module (the run is what most tests look at): one
job's worker is SIGKILLed mid-run (after its first result record is written) by the grid's
fault injection; that job alone is retried, the grid completes, and its metrics are those of
a serial run of the same jobs, byte for byte. A restarted grid runs nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from benchmark import results  # noqa: E402
from benchmark.evaluate import RunSpec, run  # noqa: E402
from benchmark.results.gate import validate_dir  # noqa: E402
from benchmark.cli import main  # noqa: E402
from benchmark.grid import FAULT_ENV, finished_records, plan_grid, run_grid  # noqa: E402
from benchmark.grid.plan import match_targets  # noqa: E402
from tiny_grid import build_tiny_grid  # noqa: E402

SCORERS = ["loss", "zlib", "min_k:k=0.1"]


def _cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def grid_home(tmp_path_factory):
    """A MEMBENCH_HOME with the tiny grid registered, and one local Ray (2 CPUs) for the module."""
    home = tmp_path_factory.mktemp("grid-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMBENCH_HOME", str(home))
        mp.delenv(FAULT_ENV, raising=False)
        tiny = build_tiny_grid()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 2**20)
        try:
            yield home, tiny, mp
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def killed_run(grid_home, tmp_path_factory):
    """The grid run, with the worker of job (tiny/opt, tiny/a) killed once mid-run."""
    home, tiny, mp = grid_home
    out = tmp_path_factory.mktemp("grid-results")
    victim = "tiny/opt | tiny/a"
    marker = tmp_path_factory.mktemp("fault") / "kill"
    events = []
    mp.setenv(FAULT_ENV, json.dumps({"job": victim, "marker": str(marker)}))
    try:
        grid = plan_grid(["tiny/*"], list(tiny.splits), SCORERS)
        report = run_grid(grid, results_dir=out, max_retries=2, progress=False,
                          on_event=lambda *e: events.append(e))
    finally:
        mp.delenv(FAULT_ENV)
    return out, victim, marker, report.as_dict(), events


def test_killed_job_alone_is_retried_and_the_grid_completes(killed_run):
    out, victim, marker, report, events = killed_run
    jobs = {f"{j['target']} | {j['split']}": j for j in report["jobs"]}
    assert [kind for kind, key, _ in events if key == victim] == ["started", "started", "done"]
    assert len(jobs) == 4 and all(j["status"] == "done" for j in jobs.values())
    assert {k: j["attempts"] for k, j in jobs.items()} == {k: 2 if k == victim else 1 for k in jobs}
    assert report["totals"] == {**report["totals"], "done": 4, "failed": 0, "retries": 1, "already_done": 0}
    assert os.path.exists(f"{marker}.0")  # the first attempt armed the fault
    first, second = jobs[victim]["workers"]
    assert first["pid"] != second["pid"]  # the killed worker did not come back
    # killed mid-run: the first attempt had cached the features, so the retry ran no forward pass
    assert jobs[victim]["forward_tokens"] == 0
    assert all(j["forward_tokens"] > 0 for k, j in jobs.items() if k != victim)
    scan = validate_dir(out)
    assert scan.ok and len(scan.records) == 4 * len(SCORERS)


def test_grid_metrics_are_byte_identical_to_a_serial_run(killed_run, tmp_path):
    out, _, _, report, _ = killed_run
    serial = tmp_path / "serial"
    for job in report["jobs"]:
        run(RunSpec.build(job["target"], job["split"], SCORERS, results_dir=serial, progress=False))
    grid = {results.record_key(r): (p, r) for p, r in results.iter_records(out)}
    alone = {results.record_key(r): (p, r) for p, r in results.iter_records(serial)}
    assert set(grid) == set(alone) and len(grid) == 4 * len(SCORERS)
    for key, (path, record) in grid.items():
        spath, srecord = alone[key]
        for block in ("metrics", "counts", "split"):
            assert json.dumps(record[block], sort_keys=True) == json.dumps(srecord[block], sort_keys=True), key
        scores = pd.read_parquet(path.parent / record["per_sample"]["file"])
        sscores = pd.read_parquet(spath.parent / srecord["per_sample"]["file"])
        pd.testing.assert_frame_equal(scores, sscores, check_exact=True)


def test_restarted_grid_runs_nothing(killed_run, grid_home):
    out, *_ = killed_run
    _, tiny, _ = grid_home
    events = []
    grid = plan_grid(["tiny/*"], list(tiny.splits), SCORERS)
    report = run_grid(grid, results_dir=out, progress=False, on_event=lambda *e: events.append(e))
    assert events == [] and report.cluster is None  # not even Ray was needed
    assert [r.status for r in report.jobs] == ["already done"] * 4
    code, stdout, _ = _cli("grid", "--targets", "tiny/*", "--splits", *tiny.splits, "--scorers", *SCORERS,
                           "--results-dir", str(out))
    assert code == 0 and "0 done, 4 already done" in stdout


def test_a_job_with_a_missing_or_stale_record_is_not_finished(killed_run, grid_home, tmp_path):
    out, *_ = killed_run
    _, tiny, _ = grid_home
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    jobs = plan_grid(["tiny/*"], list(tiny.splits), SCORERS).jobs
    assert all(finished_records(j, copy, "float32") for j in jobs)
    assert all(finished_records(j, copy, "bfloat16") is None for j in jobs)  # another dtype is another run
    gone = jobs[2]
    results.record_path(copy, gone.split, gone.target, gone.result_names[1], gone.revision).unlink()
    assert [finished_records(j, copy, "float32") is None for j in jobs] == [False, False, True, False]
    # a record made for other split content is stale
    stale_job = jobs[0]
    path = results.record_path(copy, stale_job.split, stale_job.target, stale_job.result_names[0], stale_job.revision)
    record = json.loads(path.read_text())
    record["split"]["content_hash"] = "0" * 64
    path.write_text(json.dumps(record))
    assert finished_records(stale_job, copy, "float32") is None
    # a scorer never run on the pair makes the job unfinished too
    more = plan_grid(["tiny/neox"], [tiny.splits[1]], SCORERS + ["min_k_plus_plus"]).jobs
    assert finished_records(more[0], copy, "float32") is None


def test_input_errors_in_a_job_are_reported_and_not_retried(grid_home, tmp_path):
    _, tiny, _ = grid_home
    # a scorer that needs a pool the split lacks fails in the job with its one line
    code, stdout, _ = _cli("grid", "--targets", "tiny/*", "--splits", tiny.splits[0], "--scorers", "recall",
                           "--results-dir", str(tmp_path), "--json")
    report = json.loads(stdout)
    assert code == 1 and report["totals"]["failed"] == 2 and report["totals"]["retries"] == 0
    assert all(j["attempts"] == 1 and "needs a declared non-member pool" in j["error"] for j in report["jobs"])


def test_retries_are_bounded(grid_home, tmp_path):
    _, tiny, mp = grid_home
    marker = tmp_path / "kill"
    mp.setenv(FAULT_ENV, json.dumps({"job": f"tiny/neox | {tiny.splits[0]}", "marker": str(marker), "attempts": 5}))
    try:
        grid = plan_grid(["tiny/neox"], [tiny.splits[0]], ["loss"])
        report = run_grid(grid, results_dir=tmp_path / "r", max_retries=1, progress=False)
    finally:
        mp.delenv(FAULT_ENV)
    (job,) = report.jobs
    assert job.status == "failed" and job.attempts == 2  # the first try and one retry, then given up
    assert "died" in job.error.lower() or "crash" in job.error.lower(), job.error
    assert sorted(p.name for p in tmp_path.glob("kill.*")) == ["kill.0", "kill.1"]


def test_plan_expands_globs_and_lists_invalid_pairs(grid_home):
    _, tiny, _ = grid_home
    grid = plan_grid(["tiny/*"], ["tiny/*"], ["loss", "min_k:k=0.1"])
    pairs = [(j.target, j.split) for j in grid.jobs]
    assert len(pairs) == 5 and ("tiny/neox", tiny.neox_only) in pairs
    assert [(s["target"], s["split"]) for s in grid.skipped] == [("tiny/opt", tiny.neox_only)]
    assert "not membership ground truth" in grid.skipped[0]["reason"]
    assert grid.jobs[0].result_names == ("loss", "min_k(k=0.1)")
    assert len(plan_grid(["tiny/*"], ["tiny/*"], ["loss"], allow_invalid=True).jobs) == 6
    ids = [t.id for t in match_targets(["pythia-70m@step14*", "pythia-70m@step14000"])]
    # step143000 is the pinned final revision, whose id is the model's own
    assert ids == ["pythia-70m@step14000", "pythia-70m@step140000", "pythia-70m@step141000",
                   "pythia-70m@step142000", "pythia-70m"]


@pytest.mark.parametrize("args,expected", [
    (["--ray-address", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),
    (["--ray-address", "127.0.0.1:notaport"], "has no valid port"),
    (["--targets", "tiny/opt", "--splits", "tiny/neox-only"], "no valid (target, split) pair"),
    (["--gpus-per-job", "1"], "asks for a GPU, but this machine has no GPU"),
    (["--targets", "nope-*"], "unknown target 'nope-*'"),
    (["--max-retries", "-1"], "--max-retries must be 0 or more"),
])
def test_bad_input_is_one_line(grid_home, args, expected):
    if "--gpus-per-job" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    base = {"--targets": ["tiny/*"], "--splits": ["tiny/a"], "--scorers": ["loss"]}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = [value]
    argv = ["grid"] + [x for flag, values in base.items() for x in (flag, *values)]
    code, stdout, err = _cli(*argv)
    assert code == 2 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("membench: error: ") and expected in lines[0], err
