"""`membench run`: score a split on a target with the built-in scorers."""

from __future__ import annotations

from pathlib import Path

from . import emit, table


def default_results_dir() -> Path:
    from ..home import results_dir

    return results_dir()


def register(sub):
    p = sub.add_parser("run", help="score a split on a target and write result files")
    p.add_argument("--target", required=True, help="registry target id or a local model directory")
    p.add_argument("--split", required=True, help="split id (see `membench suite list`)")
    p.add_argument(
        "--scorer",
        action="append",
        help="scorer name, optionally with parameters as name:key=value[,key=value] "
        "(e.g. min_k:k=0.1); repeatable. Default: every built-in feature-based scorer (plus "
        "`reference` when --reference is given). Built in: loss, zlib, min_k, min_k_plus_plus, "
        "dc_pdd, lowercase, reference, neighborhood, gradnorm, recall",
    )
    p.add_argument("--reference", default=None,
                   help="reference model for `reference` (registry id or local directory; "
                   "default for demo/neox-tiny: demo/neox-tiny-ref)")
    p.add_argument("--pool", default=None,
                   help="declared non-member pool (parquet/jsonl/csv with a `text` column, or "
                   ".txt) for recall, dc_pdd and neighbour vocabularies; must be disjoint from "
                   "the split (default: the split's pool.parquet when it has one)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batch-tokens", type=int, default=16384, help="tokens per forward batch")
    p.add_argument("--context-rule", default="truncate-head", choices=["truncate-head", "sliding-window"],
                   help="texts longer than the model context: score the first max_length tokens "
                   "(truncate-head), or every token in windows of max_length with stride max_length/2 "
                   "(sliding-window, MIMIR's rule); part of the feature-cache key (default: %(default)s)")
    p.add_argument("--verify", action="store_true",
                   help="re-hash the target's weights and tokenizer files (default: trust a memo kept per "
                   "file with its size and modification time)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model before its forward pass (pays off on long GPU runs; default: off)")
    p.add_argument("--results-dir", type=Path, default=None, help="default: $MEMBENCH_HOME/results")
    p.add_argument("--allow-invalid", action="store_true", help="run a pair outside label validity")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                   help="also report AUC(A) - AUC(B) with a paired, stratified bootstrap 95%% "
                   "interval (result names as printed, e.g. loss min_k)")
    p.add_argument("--json", action="store_true",
                   help="print the result records as JSON (with --compare: {records, comparison})")
    p.set_defaults(func=handle)


def check_device(device: str) -> None:
    """A one-line error, before any heavy work, for a device this machine lacks."""
    from ..targets import check_device as check

    check(device)


def _tpr(m, budget: str) -> str:
    t = m["tpr_at_fpr"][budget]
    return f"{t['value']:.3f}" if t["resolvable"] else "unresolvable"


def summary_rows(records, full: bool = False) -> list[list]:
    """One row per record: (scorer, AUC, CI, TPR@1%, n); ``full=True`` adds every budget
    and the excluded count."""
    rows = []
    for r in records:
        m = r["metrics"]
        ci = f"[{m['auc_ci95'][0]:.3f}, {m['auc_ci95'][1]:.3f}]"
        if not full:
            rows.append([r["scorer"]["name"], f"{m['auc']:.3f}", ci, _tpr(m, "0.01"), r["counts"]["n_scored"]])
            continue
        c = r["counts"]
        excluded = c["n_samples"] - c["n_scored"]
        rows.append([r["scorer"]["name"], f"{m['auc']:.3f}", ci, _tpr(m, "0.1"), _tpr(m, "0.01"),
                     _tpr(m, "0.001"), c["n_scored"], excluded])
    return rows


def handle(args) -> int:
    from .. import suite, targets
    from ..errors import MembenchError
    from ..runner import run

    # Validate names before any heavy work, so a typo costs nothing.
    suite.get_split(args.split)
    targets.get_target(args.target)
    from ..runner import make_scorers

    names = args.scorer
    if names:
        make_scorers(names)
    if args.reference:
        targets.get_target(args.reference)
    if args.batch_tokens < 1:
        raise MembenchError(f"--batch-tokens must be positive, got {args.batch_tokens}",
                            "pass a token budget such as 16384")
    check_device(args.device)
    results_dir = args.results_dir or default_results_dir()
    records = run(
        args.target,
        args.split,
        names,
        results_dir=results_dir,
        device=args.device,
        dtype=args.dtype,
        batch_tokens=args.batch_tokens,
        allow_invalid=args.allow_invalid,
        progress=not args.json,
        reference=args.reference,
        pool=args.pool,
        context_rule=args.context_rule,
        verify=args.verify,
        compile=args.compile,
    )
    for r in records:
        r["metrics"].pop("roc", None)
    header = ["scorer", "AUC", "95% CI", "TPR@10%FPR", "TPR@1%FPR", "TPR@0.1%FPR", "n", "excluded"]
    note = ("TPR at FPR <= budget: largest TPR among ROC points with FPR <= budget; "
            "'unresolvable' where budget x non-members < 1 (no false positive allowed). "
            "95% CI: 1,000 seeded class-stratified bootstrap resamples.")
    blind = records[0]["metrics"].get("best_blind_auc") if records else None
    if blind is not None:
        note += f"\nbest blind baseline AUC on this split: {blind:.3f}"
    if records and "shift_sensitivity" in records[0]:  # a control split: see diagnostics.controls
        note += ("\ncontrol split: labels are time or source, not membership; each AUC above is that "
                 "scorer's shift sensitivity (0.5 = blind to the shift); field shift_sensitivity in --json")
    text = f"{args.split} on {args.target}\n" + table(summary_rows(records, full=True), header) + "\n" + note
    payload = records
    if args.compare:
        from ..runner import compare

        c = compare(results_dir, args.split, args.target, *args.compare)
        payload = {"records": records, "comparison": c}
        text += (f"\nAUC({c['a']}) - AUC({c['b']}) = {c['auc_difference']:+.3f}, paired bootstrap 95% CI "
                 f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}], p = {c['p_value']:.3g} (n = {c['n_paired']})")
    emit(args, payload, text)
    return 0
