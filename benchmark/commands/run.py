"""`membench run`: score a split on a target with the built-in scorers."""

from __future__ import annotations

from pathlib import Path

from . import emit, table


def default_results_dir() -> Path:
    from ..home import subdir

    return subdir("results")


def register(sub):
    p = sub.add_parser("run", help="score a split on a target and write result files")
    p.add_argument("--target", required=True, help="registry target id or a local model directory")
    p.add_argument("--split", required=True, help="split id (see `membench suite list`)")
    p.add_argument(
        "--scorer",
        action="append",
        help="scorer name (repeatable); default: every built-in feature-based scorer",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batch-tokens", type=int, default=16384, help="tokens per forward batch")
    p.add_argument("--results-dir", type=Path, default=None, help="default: $MEMBENCH_HOME/results")
    p.add_argument("--allow-invalid", action="store_true", help="run a pair outside label validity")
    p.add_argument("--json", action="store_true", help="print the result records as JSON")
    p.set_defaults(func=handle)


def summary_rows(records) -> list[list]:
    rows = []
    for r in records:
        m = r["metrics"]
        t = m["tpr_at_fpr"]["0.01"]
        rows.append(
            [
                r["scorer"]["name"],
                f"{m['auc']:.3f}",
                f"[{m['auc_ci95'][0]:.3f}, {m['auc_ci95'][1]:.3f}]",
                f"{t['value']:.3f}" if t["resolvable"] else "unresolvable",
                r["counts"]["n_scored"],
            ]
        )
    return rows


def handle(args) -> int:
    from .. import attacks, suite, targets
    from ..runner import run

    # Validate names before any heavy work, so a typo costs nothing.
    suite.get_split(args.split)
    targets.get_target(args.target)
    names = args.scorer or list(attacks.FEATURE_SCORERS)
    for name in names:
        attacks.get_scorer(name)
    records = run(
        args.target,
        args.split,
        names,
        results_dir=args.results_dir or default_results_dir(),
        device=args.device,
        dtype=args.dtype,
        batch_tokens=args.batch_tokens,
        allow_invalid=args.allow_invalid,
        progress=not args.json,
    )
    for r in records:
        r["metrics"].pop("roc", None)
    header = ["scorer", "AUC", "95% CI", "TPR@1%FPR", "n"]
    emit(args, records, f"{args.split} on {args.target}\n" + table(summary_rows(records), header)
         + "\nTPR at FPR <= budget: largest TPR among ROC points with FPR <= budget")
    return 0
