"""`membench run`: score a split on a target with the built-in scorers."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from .. import attacks, suite, targets
from ..attacks.fit_budget import FitBudget
from ..errors import MembenchError
from ..suite import one_off
from ..evaluate import RunSpec, compare_labels, compare_records, run, scorer_settings
from . import emit, notes, table


def register(sub):
    p = sub.add_parser("run", help="score a split on a target and write result files")
    p.add_argument("--target", required=True,
                   help="registry target id (`membench targets list`) or a local model directory "
                   "(save_pretrained folder with config.json, tokenizer and weights)")
    p.add_argument("--target-name", default=None,
                   help="the name a local model directory gets in results and on the site (default: "
                   "local/<folder name>-<first 8 hex digits of its weights hash>; paths are never published)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--split", help="split id (see `membench suite list`)")
    where.add_argument("--file", type=Path, default=None, metavar="PATH",
                       help="a one-off split from your own labelled file (jsonl/json/csv/parquet or a "
                       "save_to_disk folder; 1 = member): registered as file/<content hash> with labels "
                       "not declared valid for any target unless --valid-for says so; named by its content, so "
                       "the same texts and labels again reuse their features and diagnostics (to keep it under a "
                       "name: `membench suite add`)")
    p.add_argument("--valid-for", nargs="+", default=[], metavar="TARGET",
                   help="with --file: targets (ids or patterns) for which the file's labels are membership ground "
                   "truth (default: none: the run goes ahead and its records are marked as an invalid pair)")
    p.add_argument("--text-field", help="with --file: the text column (default: text, else input)")
    p.add_argument("--label-field", help="with --file: the label column (default: label)")
    p.add_argument(
        "--scorer",
        action="append",
        help="scorer name, optionally with parameters as name:key=value[,key=value] "
        "(e.g. min_k:k=0.1), or a grid with several values per key (min_k:k=0.05,0.1,0.2,0.5: every "
        "setting from one cached feature pass); repeatable. Default: every built-in feature-based "
        "scorer (one needing a pool is skipped when there is none, and the output says so), plus "
        "`reference` when --reference is given; dc_pdd reads a frequency table from `membench dcpdd-freq "
        "build` (or dc_pdd:frequency=pool). Registered, by default set "
        "(`fit`: trainable on a calibration subset, see --calibration): " + attacks.listing(),
    )
    p.add_argument("--reference", default=None,
                   help="reference model for `reference` (registry id or local directory; "
                   "default for demo/neox-tiny: demo/neox-tiny-ref, else none)")
    p.add_argument("--pool", default=None,
                   help="declared non-member pool (parquet/jsonl/csv with a `text` column, or "
                   ".txt) for recall, dc_pdd:frequency=pool and neighbour vocabularies; must be disjoint from "
                   "the split (default: the split's pool.parquet when it has one)")
    p.add_argument("--calibration", default=None, metavar="SUBSET",
                   help=f"calibration subset for trainable scorers ({', '.join(attacks.default_set('fit'))}: they fit "
                   "on its labels and are scored on the evaluated rest only); every other "
                   "record of the split is then also recomputed on that rest (`membench calibration list SPLIT`: "
                   "the subsets; default: each trainable scorer's own, cal80 for MIA-Tuner, cal10 otherwise)")
    p.add_argument("--fit-budget", default=None, metavar="CAPS",
                   help="caps on each trainable scorer's fit, e.g. steps=500,forward_tokens=5e6,backward_tokens=2e6,"
                   "seconds=900 (a fit that would pass one is stopped with one line and nothing is published; "
                   "default: steps=2000,forward_tokens=5e7,backward_tokens=2.5e7,seconds=14400)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weight dtype (statistics are always fp32)")
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
    p.add_argument("--compare", nargs="+", metavar="SCORER", default=None,
                   help="compare every pair of these scorers of this run (names as printed, specs such as "
                   "min_k:k=0.1, or bare names; any not yet in the run is added to it): AUC(A) - AUC(B) "
                   "with a paired, stratified bootstrap 95%% interval and p-value, Holm-adjusted over the "
                   "pairs (default: no comparison)")
    p.add_argument("--json", action="store_true",
                   help="print the result records as JSON (with --compare: {records, comparison})")
    p.set_defaults(func=handle)


def check_device(device: str) -> None:
    """A one-line error, before any heavy work, for a device this machine lacks."""
    targets.check_device(device)


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
            rows.append([r["scorer"]["name"], f"{m['auc']:.3f}", ci, _tpr(m, "0.01"), notes.n_cell(r)])
            continue
        c = r["counts"]
        excluded = c["n_samples"] - c["n_scored"]
        rows.append([r["scorer"]["name"], f"{m['auc']:.3f}", ci, _tpr(m, "0.1"), _tpr(m, "0.01"),
                     _tpr(m, "0.001"), notes.n_cell(r), excluded])
    return rows


def p_text(p: float, resolution: float) -> str:
    """A bootstrap p-value as a table cell: below the bootstrap's resolution (one over the
    resamples) it is ``< 0.001`` (for 1,000 resamples), never ``0``."""
    return f"< {resolution:g}" if p < resolution else f"{p:.3g}"


def comparison_lines(c: dict) -> list[str]:
    rows = [[f"{x['a']} - {x['b']}", f"{x['auc_difference']:+.3f}",
             f"[{x['ci95'][0]:+.3f}, {x['ci95'][1]:+.3f}]", p_text(x["p_value"], x["p_resolution"]),
             p_text(x["p_holm"], x["p_resolution"]), x["n_paired"]] for x in c["pairs"]]
    lines = [table(rows, ["AUC(A) - AUC(B)", "difference", "95% CI", "p", "p (Holm)", "n"])]
    lines.append(f"paired, class-stratified bootstrap ({c['pairs'][0]['bootstrap']['resamples']:,} resamples) on "
                 f"the samples both scored; p-values Holm-adjusted over {c['correction']['family_size']} pair(s); "
                 "intervals per pair")
    return lines


def _file_split(args, target_id: str) -> str:
    """``--file`` as a one-off split keyed by its content (``suite.one_off``); what it says about
    the split (reuse, label validity) is kept in ``args.one_off`` for the output."""
    args.one_off = one_off.file_split(args.file, target_id, text_field=args.text_field,
                                      label_field=args.label_field, valid_for=args.valid_for)
    return args.one_off.split_id


def blind_note(records: list[dict]) -> str | None:
    """The best blind AUC the records were compared with, at each unit among them (a group
    scorer's over groups, a text scorer's over texts); None when none was."""
    blind = {}
    for r in records:
        if r["metrics"].get("best_blind_auc") is not None:
            blind.setdefault("groups" if r.get("kind") == "group" else "texts", r["metrics"]["best_blind_auc"])
    if not blind:
        return None
    return "best blind AUC these records are compared with (the target's tokenizer baseline counts): " + ", ".join(
        f"{value:.3f} over {unit}" for unit, value in sorted(blind.items(), key=lambda kv: kv[0] != "texts"))


def handle(args) -> int:
    # Names and numbers are checked (RunSpec.build) before any heavy work, so a typo costs nothing;
    # a --file split is registered only once the scorers and the fit budget parse.
    tspec = targets.get_target(args.target, name=args.target_name)
    if (args.text_field or args.label_field or args.valid_for) and not args.file:
        raise MembenchError("--text-field, --label-field and --valid-for go with --file", "drop them, or pass --file PATH")
    fit_budget = FitBudget.parse(args.fit_budget)
    if args.file and args.scorer:
        scorer_settings(args.scorer)
    split_id = args.split or _file_split(args, tspec.id)
    spec = RunSpec.build(
        args.target, split_id, args.scorer, results_dir=args.results_dir, reference=args.reference, pool=args.pool,
        calibration=args.calibration, fit_budget=fit_budget, batch_tokens=args.batch_tokens,
        device=args.device, target_name=args.target_name, dtype=args.dtype, context_rule=args.context_rule,
        allow_invalid=args.allow_invalid or bool(args.file), verify=args.verify, compile=args.compile, progress=not args.json)
    chosen = None
    if args.compare:
        chosen, extra = compare_labels(args.compare, spec.scorers)
        spec = dataclasses.replace(spec, scorers=spec.scorers + tuple(extra))
    report = run(spec)
    records, results_dir, skipped = report.records, spec.results_dir, report.skipped
    comparison = compare_records(results_dir, records, chosen) if chosen else None
    for r in records:
        r["metrics"].pop("roc", None)
    header = ["scorer", "AUC", "95% CI", "TPR@10%FPR", "TPR@1%FPR", "TPR@0.1%FPR", "n", "excluded"]
    note = ("TPR at FPR <= budget: largest TPR among ROC points with FPR <= budget; "
            "'unresolvable' where budget x non-members < 1 (no false positive allowed). "
            "95% CI: 1,000 seeded class-stratified bootstrap resamples.")
    blind = blind_note(records)
    if blind:
        note += "\n" + blind
    else:
        note += f"\nno blind baseline for this split yet: `membench diagnose {split_id}` gives one"
    if records and "shift_sensitivity" in records[0]:  # a control split: see diagnostics.controls
        note += ("\ncontrol split: labels are time or source, not membership; each AUC above is that "
                 "scorer's shift sensitivity (0.5 = blind to the shift); field shift_sensitivity in --json")
    for name in sorted({r["evaluation_subset"]["name"] for r in records if "evaluation_subset" in r}):
        on = [r for r in records if (r.get("evaluation_subset") or {}).get("name") == name]
        sub = on[0]["evaluation_subset"]
        note += (f"\n{', '.join(r['scorer']['name'] for r in on)}: fitted on calibration subset {name} "
                 f"({sub['n_calibration']} texts) and scored on its evaluated rest only ({sub['n']} texts); every "
                 f"other record of {split_id} in the results folder is recomputed on the same rest "
                 f"(`membench calibration list {split_id}`)")
        for r in on:
            point = r.get("operating_point")
            if point:
                on_cal = point.get("calibration") or {}
                there = (f" (TPR {on_cal['tpr']:.3f} at FPR {on_cal['fpr']:.3f} there)"
                         if {"tpr", "fpr"} <= set(on_cal) else "")
                note += (f"\n{r['scorer']['name']}: operating point chosen on {name}{there} reaches TPR "
                         f"{point['evaluated']['tpr']:.3f} at FPR {point['evaluated']['fpr']:.3f} on the evaluated rest")
    note += "".join("\n" + line for line in notes.run_notes(records, split_id, results_dir,
                                                             getattr(args, "one_off", None)))  # issue 27
    skip_lines = [f"skipped {s['scorer']}: {s['reason']} ({s['fix']})" for s in skipped]
    target_shown = records[0]["target"]["id"] if records else tspec.id
    text = "\n".join([f"{split_id} on {target_shown}", table(summary_rows(records, full=True), header), note,
                      *skip_lines])
    payload = records
    if comparison:
        payload = {"records": records, "comparison": comparison}
        text += "\n" + "\n".join(comparison_lines(comparison))
    if args.json:
        for line in skip_lines:  # stdout stays one JSON document
            print(f"membench: {line}", file=sys.stderr)
    emit(args, payload, text)
    return 0
