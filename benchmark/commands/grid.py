"""`membench grid`: every (target, split) pair of a grid as one job, run on Ray."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from . import emit, table


def register(sub):
    p = sub.add_parser(
        "grid",
        help="run targets x splits x scorers as one Ray job per (target, split); retried, resumable",
        description="Expand target and split patterns (globs) into one job per valid (target, split) "
        "pair with all its scorers, and run the jobs as Ray tasks: on a local Ray by default, on a "
        "cluster with --ray-address. Pairs outside a split's label validity are skipped and listed. "
        "A job whose worker dies is retried alone (--max-retries); a job whose records are already "
        "in the results folder is not run again.",
    )
    p.add_argument("--targets", nargs="+", action="extend", required=True, metavar="PATTERN",
                   help="target ids or globs (pythia-*, 'pythia-160m@step*' for checkpoints, local "
                   "model folders); quote globs")
    p.add_argument("--splits", nargs="+", action="extend", required=True, metavar="PATTERN",
                   help="split ids or globs ('mimir/*/ngram_13_0.8')")
    p.add_argument("--scorers", nargs="+", action="extend", default=None, metavar="SCORER",
                   help="scorers for every job, as for `membench run --scorer` (name or "
                   "name:key=value,...); default: what `membench run` chooses for each split")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="a running Ray cluster (host:port of the head, ray://host:10001, or auto "
                   "for one started on this machine); default (or local): start a local Ray")
    p.add_argument("--gpus-per-job", type=float, default=None, metavar="N",
                   help="GPUs per job (default: 1 where the cluster has GPUs, else 0)")
    p.add_argument("--cpus-per-job", type=float, default=1.0, metavar="N", help="CPUs per job (default 1)")
    p.add_argument("--max-retries", type=int, default=2, metavar="N",
                   help="retries of a job whose worker died or that failed other than on bad input (default 2)")
    p.add_argument("--reference", default=None, help="reference model for the `reference` scorer, for every job")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batch-tokens", type=int, default=16384, help="tokens per forward batch")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="default: $MEMBENCH_HOME/results (on a cluster: a folder every node shares)")
    p.add_argument("--allow-invalid", action="store_true",
                   help="run pairs outside label validity too (results marked), as `membench run --allow-invalid`")
    p.add_argument("--json", action="store_true", help="print the grid report as JSON")
    p.set_defaults(func=handle)


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_text(report: dict) -> str:
    """The summary table (one row per job, one AUC column per scorer), skipped pairs, failures."""
    jobs = report["jobs"]
    scorers: list[str] = []
    for j in jobs:
        scorers.extend(n for n in j["scorers"] if n not in scorers)
    rows = [[j["target"], j["split"], j["status"], j["attempts"], _fmt(j["seconds"], ".1f"),
             _fmt(j["tokens_per_s"], ",.0f")] + [_fmt(j["aucs"].get(n), ".3f") for n in scorers]
            for j in jobs]
    header = ["target", "split", "status", "attempts", "s", "tok/s"] + [f"AUC {n}" for n in scorers]
    lines = [table(rows, header)]
    failed = [j for j in jobs if j["status"] == "failed"]
    if failed:
        lines.append("failed jobs:")
        lines += [f"  {j['target']} x {j['split']}: {j['error']}" for j in failed]
    if report["skipped"]:
        lines.append(f"skipped pairs ({len(report['skipped'])}):")
        lines += [f"  {s['target']} x {s['split']}: {s['reason']}" for s in report["skipped"]]
    t = report["totals"]
    lines.append(f"{t['jobs']} jobs: {t['done']} done, {t['already_done']} already done (not run again), "
                 f"{t['failed']} failed, {t['retries']} retries; {t['seconds']:.1f} s, "
                 f"{t['forward_tokens']:,} tokens forward ({_fmt(t['tokens_per_s'], ',.0f')} tok/s)")
    return "\n".join(lines)


def handle(args) -> int:
    from ..errors import MembenchError
    from ..grid import check_address, check_options, plan_grid, run_grid

    if args.batch_tokens < 1:
        raise MembenchError(f"--batch-tokens must be positive, got {args.batch_tokens}",
                            "pass a token budget such as 16384")
    check_options(max_retries=args.max_retries, cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job)
    if args.ray_address:  # before any work: Ray itself retries an unreachable address for minutes
        check_address(args.ray_address)
    if args.reference:
        from .. import targets

        targets.get_target(args.reference)
    if args.results_dir is None:
        from ..home import results_dir

        args.results_dir = results_dir()
    # Ray prints its own notices (a worker that died, ...) on stdout: keep stdout for the report.
    with contextlib.redirect_stdout(sys.stderr):
        grid = plan_grid(args.targets, args.splits, args.scorers, allow_invalid=args.allow_invalid,
                         reference=args.reference)
        report = run_grid(
            grid, results_dir=args.results_dir, ray_address=args.ray_address, gpus_per_job=args.gpus_per_job,
            cpus_per_job=args.cpus_per_job, max_retries=args.max_retries, dtype=args.dtype,
            batch_tokens=args.batch_tokens, allow_invalid=args.allow_invalid, reference=args.reference,
            progress=not args.json,
        ).as_dict()
    emit(args, report, summary_text(report))
    return 0 if report["totals"]["failed"] == 0 else 1
