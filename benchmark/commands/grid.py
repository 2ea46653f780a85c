"""`membench grid`: every (target, split) pair of a grid as one job, run on Ray; `--preset` for the
grid a reported table was made with, `--plan` for its jobs and estimated cost without running."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from ..targets.context import CONTEXT_RULE, CONTEXT_RULES
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
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="the grid a reported table was made with (targets, splits, scorers, reference, context "
                   "rule, dtype, batch size; benchmark/grid/presets.yaml); --list-presets names them")
    p.add_argument("--list-presets", action="store_true", help="list the reproduction presets and exit")
    p.add_argument("--plan", action="store_true",
                   help="print the jobs and their estimated cost (tokens, FLOPs, hours on the devices "
                   "`membench bench` measured) and exit without running anything")
    p.add_argument("--targets", nargs="+", action="extend", default=None, metavar="PATTERN",
                   help="target ids or globs (pythia-*, 'pythia-160m@step*' for checkpoints, local "
                   "model folders); quote globs (required unless --preset)")
    p.add_argument("--splits", nargs="+", action="extend", default=None, metavar="PATTERN",
                   help="split ids or globs ('mimir/*/ngram_13_0.8'; required unless --preset)")
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
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                   help="model weights (default: the preset's, else float32)")
    p.add_argument("--batch-tokens", type=int, default=None,
                   help="tokens per forward batch (default: the preset's, else 16384)")
    p.add_argument("--context-rule", default=None, choices=sorted(CONTEXT_RULES),
                   help=f"what is scored of a text longer than the context (default: the preset's, else {CONTEXT_RULE})")
    p.add_argument("--tokens-per-word", type=float, default=None, metavar="X",
                   help="--plan: tokens per word for splits that cannot be tokenized here (default: presets.yaml's assumption)")
    p.add_argument("--sustained-tflops", type=float, default=None, metavar="TFLOPS",
                   help="--plan: also give the hours at this sustained forward rate (your own device's "
                   "`membench bench` figure: tokens/s x FLOPs per token)")
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


def _resolve(args) -> None:
    """Fill the grid's settings from --preset (refusing a setting given twice), then defaults."""
    from ..errors import MembenchError
    from ..grid import presets

    preset = presets.get_preset(args.preset) if args.preset else None
    args.preset_obj = preset
    if preset is not None:
        for flag, value in (("--targets", args.targets), ("--splits", args.splits), ("--scorers", args.scorers),
                            ("--reference", args.reference)):
            if value:
                raise MembenchError(f"--preset {preset.name} sets the grid's {flag.lstrip('-')}; {flag} was given too",
                                    f"leave {flag} out, or drop --preset and give the whole grid")
        args.targets, args.splits = list(preset.targets), list(preset.splits)
        args.scorers, args.reference = list(preset.scorers), preset.reference
    elif not args.targets or not args.splits:
        raise MembenchError("the grid names no target or no split",
                            "pass --targets PATTERN ... and --splits PATTERN ..., or --preset NAME (--list-presets)")
    args.dtype = args.dtype or (preset.dtype if preset else "float32")
    args.batch_tokens = args.batch_tokens if args.batch_tokens is not None else (preset.batch_tokens if preset else 16384)
    args.context_rule = args.context_rule or (preset.context_rule if preset else CONTEXT_RULE)


def presets_text(table_of: dict) -> str:
    rows = [[name, len(p.targets), len(p.splits), ", ".join(p.scorers),
             "; ".join(f"{r.paper}: {r.table}" for r in p.reproduces)] for name, p in table_of.items()]
    return table(rows, ["preset", "targets", "splits", "scorers", "reproduces"])


def plan_text(args, est: dict) -> str:
    """The plan: settings, one line per job, totals, hours per recorded figure, differences."""
    preset = args.preset_obj
    lines = []
    if preset is not None:
        lines.append(f"preset {preset.name}: {preset.description}")
        lines += [f"reproduces: {r.paper}, table {r.table}" for r in preset.reproduces]
    lines.append(f"scorers: {', '.join(args.scorers or ['(the default feature-based set)'])}"
                 + (f"; reference {args.reference}" if args.reference else "")
                 + f"; context rule {args.context_rule}; dtype {args.dtype}; {args.batch_tokens:,} tokens per batch")
    rows = [[j["target"], j["split"], f"{j['texts']:,}", f"{j['tokens']:,}", f"{j['target_passes']:g}",
             f"{j['reference_tokens']:,}", f"{j['flops']:.3g}", j["tokens_basis"].split(":")[0]] for j in est["jobs"]]
    lines.append(table(rows, ["target", "split", "texts", "tokens", "target passes", "reference tokens", "FLOPs",
                              "tokens"]))
    lines.append(f"{est['n_jobs']} jobs; {est['total_tokens']:,} tokens per pass; {est['total_flops']:.3g} forward FLOPs")
    if est["not_estimated"]:
        lines.append(f"not estimated (no cost rule; left out of the totals): {', '.join(est['not_estimated'])}")
    bases = sorted({j["tokens_basis"] for j in est["jobs"]})
    lines.append("token counts: " + (" | ".join(bases[:3]) + (f" (and {len(bases) - 3} more)" if len(bases) > 3 else "")))
    lines.append(f"estimate: {est['formula']}")
    for h in est["hours"]:
        lines.append(f"  {h['kind']}: {h['hours']:,.1f} hours at {h['sustained_flops'] / 1e9:,.1f} GFLOP/s "
                     f"({h['figure']})")
    if not any(h["kind"] == "gpu" for h in est["hours"]):
        lines.append("  GPU: no GPU figure is recorded in BENCHMARKS.md, so no GPU-hours are given; run `membench "
                     "bench --target pythia-1.4b --random-init --device cuda --dtype bfloat16 --n-texts 512 --tokens "
                     "512` on the GPU, record it in BENCHMARKS.md and benchmark/grid/presets.yaml (throughput), or "
                     "pass --sustained-tflops")
    if est["skipped"]:
        lines.append(f"skipped pairs ({len(est['skipped'])}):")
        lines += [f"  {s['target']} x {s['split']}: {s['reason']}" for s in est["skipped"]]
    if preset is not None and preset.differences:
        lines.append("differences from the source:")
        lines += [f"  - {d}" for d in preset.differences]
    return "\n".join(lines)


def handle_plan(args) -> int:
    from ..grid import estimate, plan, presets

    if args.preset_obj is not None:
        est = presets.plan(args.preset_obj, tokens_per_word=args.tokens_per_word,
                           sustained_tflops=args.sustained_tflops, allow_invalid=args.allow_invalid)
    else:
        assumptions, figures, _ = presets.document()
        pairs, skipped = plan.valid_pairs(args.targets, args.splits, allow_invalid=args.allow_invalid)
        est = estimate.estimate(pairs, skipped, args.scorers or [], reference=args.reference,
                                context_rule=args.context_rule, sizes=lambda _: None,
                                tokens_per_word=args.tokens_per_word or assumptions.tokens_per_word, figures=figures,
                                sustained_flops=args.sustained_tflops * 1e12 if args.sustained_tflops else None)
    payload = {"preset": args.preset, "scorers": args.scorers, "reference": args.reference,
               "context_rule": args.context_rule, "dtype": args.dtype, "batch_tokens": args.batch_tokens,
               **est.as_dict()}
    if args.preset_obj is not None:
        payload["reproduces"] = [r.model_dump() for r in args.preset_obj.reproduces]
        payload["differences"] = list(args.preset_obj.differences)
    emit(args, payload, plan_text(args, payload))
    return 0


def handle(args) -> int:
    from ..errors import MembenchError
    from ..grid import check_address, check_options, plan_grid, presets, run_grid

    if args.list_presets:
        table_of = presets.presets()
        emit(args, {name: p.model_dump() for name, p in table_of.items()}, presets_text(table_of))
        return 0
    _resolve(args)
    if args.batch_tokens < 1:
        raise MembenchError(f"--batch-tokens must be positive, got {args.batch_tokens}",
                            "pass a token budget such as 16384")
    if args.plan:
        return handle_plan(args)
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
            context_rule=args.context_rule, progress=not args.json,
        ).as_dict()
    emit(args, report, summary_text(report))
    return 0 if report["totals"]["failed"] == 0 else 1
