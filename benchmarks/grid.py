"""Wall time of the test-size grid, serial in one process against `membench grid` on a local Ray.

    python benchmarks/grid.py [--cpus 2] [--json]

Builds the tiny grid of tests/grid/test_grid.py (2 random-weight targets x 2 splits of 32 texts,
scorers loss, zlib, min_k:k=0.1) twice, in two fresh MEMBENCH_HOMEs (cold feature caches),
then times:

- serial: ``evaluate.run`` for each job in turn, in this process, cold (empty feature cache)
  then warm (cache filled, into a second results folder);
- Ray: ``ray.init`` on its own, then ``run_grid`` cold (fresh workers: each imports torch and
  transformers before its first job) and warm (same workers, cache filled, a second results
  folder), then the restarted grid (every job already done: nothing runs);

and derives the grid's overhead per job from the warm run: worker time not spent inside the
jobs, (Ray wall x CPUs - sum of the jobs' own seconds) / jobs (exact with ``--cpus 1``; with
more CPUs it also counts slots left idle at the end). The metrics of all four runs are
compared (they must be identical).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tiny_grid: test scaffolding

SCORERS = ["loss", "zlib", "min_k:k=0.1"]


def _home(root: Path, name: str):
    from tiny_grid import build_tiny_grid

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

    from benchmark import results
    from benchmark.evaluate import RunSpec, run
    from benchmark.grid import plan_grid, run_grid

    out: dict = {"cpus": args.cpus, "torch_threads_serial": torch.get_num_threads(),
                 "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = _home(root, "serial")
        grid = plan_grid(list(tiny.targets), list(tiny.splits), SCORERS)
        for phase in ("cold", "warm"):  # warm: the feature cache is filled, the models' code imported
            t = time.perf_counter()
            for job in grid.jobs:
                run(RunSpec.build(job.target, job.split, list(job.scorers), results_dir=root / f"serial-{phase}",
                                  progress=False))
            out[f"serial_{phase}_s"] = time.perf_counter() - t

        tiny = _home(root, "ray")
        grid = plan_grid(list(tiny.targets), list(tiny.splits), SCORERS)
        t = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        out["ray_init_s"] = time.perf_counter() - t
        reports = {}
        try:
            for phase in ("cold", "warm"):  # warm: the same workers again, the feature cache filled
                t = time.perf_counter()
                reports[phase] = run_grid(grid, results_dir=root / f"ray-{phase}", progress=False)
                out[f"ray_{phase}_s"] = time.perf_counter() - t
            t = time.perf_counter()
            again = run_grid(grid, results_dir=root / "ray-cold", progress=False)
            out["restart_s"] = time.perf_counter() - t
        finally:
            ray.shutdown()
        assert all(r.ok for r in reports.values()) and all(r.status == "already done" for r in again.jobs)
        n = len(grid.jobs)
        warm_own = sum(r.seconds for r in reports["warm"].jobs)
        out.update(jobs=n, forward_tokens=sum(r.forward_tokens for r in reports["cold"].jobs),
                   ray_warm_jobs_own_s=warm_own,
                   # worker time per job spent outside the job itself (scheduling, argument and
                   # result transfer, monitor events, idle slots): exact with --cpus 1
                   overhead_per_job_s=(out["ray_warm_s"] * args.cpus - warm_own) / n,
                   restart_jobs_per_s=n / out["restart_s"],
                   load_average_after=[round(x, 2) for x in os.getloadavg()])

        def metrics(folder):
            return {"|".join(results.record_key(r)): r["metrics"] for _, r in results.iter_records(root / folder)}

        reference = json.dumps(metrics("serial-cold"), sort_keys=True)
        out["metrics_identical"] = all(json.dumps(metrics(f), sort_keys=True) == reference
                                       for f in ("serial-warm", "ray-cold", "ray-warm"))
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        for key, value in out.items():
            print(f"{key:>22}: {value:.3f}" if isinstance(value, float) else f"{key:>22}: {value}")
    return 0 if out["metrics_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
