"""Wall time of the test-size grid, serial in one process against `membench grid` on a local Ray.

    python benchmarks/grid.py [--cpus 2] [--json]

Builds the tiny grid of tests/test_grid.py (2 random-weight targets x 2 splits of 32 texts,
scorers loss, zlib, min_k:k=0.1) twice, in two fresh MEMBENCH_HOMEs (cold feature caches),
then times:

- serial: ``runner.run`` for each job in turn, in this process (imports already done);
- Ray: ``ray.init`` on its own, then ``run_grid`` (fresh workers: each imports torch and
  transformers before its first job), then the restarted grid (every job already done);

and derives the grid's overhead per job: worker CPU time not spent inside jobs,
(Ray wall x CPUs - sum of the jobs' own seconds) / jobs. The per-job metrics of both runs
are compared (they must be identical).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

SCORERS = ["loss", "zlib", "min_k:k=0.1"]


def _home(root: Path, name: str):
    from benchmark.grid.tiny import build_tiny_grid

    os.environ["MEMBENCH_HOME"] = str(root / name)
    return build_tiny_grid()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import ray
    import torch

    from benchmark import results, runner
    from benchmark.grid import plan_grid, run_grid

    out: dict = {"cpus": args.cpus, "torch_threads_serial": torch.get_num_threads(),
                 "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = _home(root, "serial")
        grid = plan_grid(list(tiny.targets), list(tiny.splits), SCORERS)
        t = time.perf_counter()
        for job in grid.jobs:
            runner.run(job.target, job.split, list(job.scorers), results_dir=root / "serial-results", progress=False)
        out["serial_s"] = time.perf_counter() - t

        tiny = _home(root, "ray")
        grid = plan_grid(list(tiny.targets), list(tiny.splits), SCORERS)
        t = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        out["ray_init_s"] = time.perf_counter() - t
        try:
            t = time.perf_counter()
            report = run_grid(grid, results_dir=root / "ray-results", progress=False)
            out["ray_grid_s"] = time.perf_counter() - t
            t = time.perf_counter()
            again = run_grid(grid, results_dir=root / "ray-results", progress=False)
            out["restart_s"] = time.perf_counter() - t
        finally:
            ray.shutdown()
        assert report.ok and all(r.status == "already done" for r in again.jobs)
        jobs_s = sum(r.seconds for r in report.jobs)
        out.update(jobs=len(grid.jobs), jobs_own_s=jobs_s,
                   overhead_per_job_s=(out["ray_grid_s"] * args.cpus - jobs_s) / len(grid.jobs),
                   restart_jobs_per_s=len(grid.jobs) / out["restart_s"],
                   forward_tokens=sum(r.forward_tokens for r in report.jobs))
        serial = {"|".join(results.record_key(r)): r["metrics"] for _, r in results.iter_records(root / "serial-results")}
        on_ray = {"|".join(results.record_key(r)): r["metrics"] for _, r in results.iter_records(root / "ray-results")}
        out["metrics_identical"] = json.dumps(serial, sort_keys=True) == json.dumps(on_ray, sort_keys=True)
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        for key, value in out.items():
            print(f"{key:>22}: {value:.3f}" if isinstance(value, float) else f"{key:>22}: {value}")
    return 0 if out["metrics_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
