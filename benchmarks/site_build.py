"""Site-build benchmark: build the leaderboard from N generated result files and time it.

    python benchmarks/site_build.py --results 2000 [--keep DIR] [--json]

The result files are synthetic (random scores, real metrics stage, real store, so they pass
the record models and the per-sample hash checks); generating them is not timed. Timed apart:
the publication gate (`benchmark.results.gate.publish`: checking every file and writing what
pages need; its splits are not materialized, so nothing is recomputed from labels) and
`benchmark.site.build_site`: reading every stamped file (record model, SHA-256 of every
per-sample parquet, the gate's stamp, duplicate keys) and rendering every page, plot and
download.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # synthetic_results: test scaffolding


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=int, default=2000, help="number of result files")
    p.add_argument("--samples", type=int, default=200, help="samples per result (sets the ROC size)")
    p.add_argument("--keep", type=Path, default=None, help="keep the results and site in this folder")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from benchmark.results.gate import publish
    from synthetic_results import write_synthetic_results
    from benchmark.site import build_site

    work = args.keep or Path(tempfile.mkdtemp(prefix="membench-site-bench-"))
    results, out = work / "results", work / "site"
    t0 = time.perf_counter()
    n = write_synthetic_results(results, args.results, n_samples=args.samples, progress=not args.json)
    generate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scan = publish(results)
    gate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = build_site(results, out)
    build_s = time.perf_counter() - t0
    payload = {
        "result_files": n,
        "accepted": report.n_results,
        "refused": len(report.rejected),
        "pages": report.pages,
        "tables": report.tables,
        "gate_s": round(gate_s, 2),
        "build_s": round(build_s, 2),
        "generate_s": round(generate_s, 2),
        "site_mb": round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    assert scan.ok and report.n_results == n, "generated files must all be accepted"
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        for k, v in payload.items():
            print(f"{k:>16}: {v}")
        print(f"{'':>16}  (goal: build under 30 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
