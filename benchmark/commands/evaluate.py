"""`membench evaluate PATH --split ... --target ...`: score a split with a submission, sandboxed."""

from __future__ import annotations

from pathlib import Path

from . import emit, table
from .validate import add_sandbox_args, limits_from


def register(sub):
    p = sub.add_parser("evaluate", help="run a submitted scorer in the sandbox on a split; write results")
    p.add_argument("path", type=Path, help="submission folder (scorer.py + submission.yaml)")
    p.add_argument("--split", required=True, help="split id (see `membench suite list`)")
    p.add_argument("--target", required=True, help="registry target id or a local model directory")
    p.add_argument("--results-dir", type=Path, default=None, help="default: $MEMBENCH_HOME/results")
    p.add_argument("--log", type=Path, default=None, help="file for the scorer's stdout/stderr")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batch-tokens", type=int, default=16384)
    p.add_argument("--allow-invalid", action="store_true", help="run a pair outside label validity")
    p.add_argument("--calibration", default=None, metavar="SUBSET",
                   help="for a submission that declares `fit`: the calibration subset it fits on, inside the "
                   "sandbox, before it is scored on the evaluated rest (default: cal10)")
    p.add_argument("--fit-budget", default=None, metavar="CAPS",
                   help="caps on its fit, e.g. steps=500,forward_tokens=5e6,seconds=900 (default: as for "
                   "`membench run`)")
    add_sandbox_args(p)
    p.add_argument("--json", action="store_true", help="print the result record as JSON")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from .. import suite, targets
    from ..home import logs_dir, results_dir as default_results_dir
    from ..submissions import evaluate, load
    from ..submissions.evaluation import describe_usage
    from .run import summary_rows

    sub = load(args.path)  # metadata errors before any heavy work
    suite.get_split(args.split)
    targets.get_target(args.target)
    from ..attacks.fit_budget import FitBudget

    fit_budget = FitBudget.parse(args.fit_budget)
    if args.calibration:
        suite.calibration.subset_spec(suite.get_split(args.split), args.calibration)
    results_dir = args.results_dir or default_results_dir()
    log = args.log or logs_dir("submissions") / f"{sub.name}.log"
    record = evaluate(args.path, split_id=args.split, target_id=args.target, results_dir=results_dir,
                      log_path=log, limits=limits_from(args), allow_unsandboxed=args.allow_unsandboxed,
                      device=args.device, dtype=args.dtype, batch_tokens=args.batch_tokens,
                      allow_invalid=args.allow_invalid, progress=not args.json, calibration=args.calibration,
                      fit_budget=fit_budget)
    record["metrics"].pop("roc", None)
    header = ["scorer", "AUC", "95% CI", "TPR@1%FPR", "n"]
    text = (f"{sub.name} on {args.split} / {record['target']['id']}\n" + table(summary_rows([record]), header)
            + f"\n{describe_usage(record['scorer']['requires'], record['usage']['capabilities_used'], record['usage'])}"
            + f"\nresults: {results_dir}\nscorer log: {log}")
    emit(args, record, text)
    return 0
