"""`membench results validate|close-round|migrate|schema|reported`: the publication gate, closing a
round of a private split (its final figures), re-keying, the schema, and the numbers papers
reported (checked, and paired with reproduced records)."""

from __future__ import annotations

from pathlib import Path

from ..home import PUBLISHED_RESULTS, results_dir
from ..results import SCHEMA_FILE, ResultsStore, migrate, reported, write_schema
from ..results.gate import publish, validate_dir
from ..results.ladder import close_round
from ..results.published import disclose, may_publish
from ..results.schema import render
from . import emit, table


def register(sub):
    p = sub.add_parser("results", help="the publication gate (validate), re-keying (migrate), the record schema")
    ss = p.add_subparsers(dest="results_command", metavar="SUBCOMMAND")
    v = ss.add_parser(
        "validate",
        help="the publication gate: check every result under DIR and write what pages need; exit 1 when any "
        "is refused",
        description="The publication gate, the one step after evaluation that reads labels. Re-keys DIR (every "
        "file under the name its whole key gives), checks every result file against the record models "
        "(benchmark/results/records.py; schema: benchmark/results/result.schema.json), the SHA-256 of its "
        "per-sample parquet file and that no two files share a key, and, for every split materialized here, "
        "recomputes each figure (AUC, intervals, TPRs, counts, ROC, excess over blind) from the per-sample "
        "scores and the split's labels: a record whose figures differ is refused, naming the file and the "
        "field. Into every accepted record it writes what the site and the API show: the display block (name "
        "and setting, method, citation, definition, BibTeX), the target's nominal size and, on public splits "
        "only, the per-class views (score histograms, AUC by length, length statistics), and, on private splits, "
        "the Ladder's decision (benchmark/results/ladder.py: a submitter's result is shown only when it beats their "
        "best by more than the noise; figures from the split's public part until the round is closed). The site "
        "shows only records it stamped and that have not changed since, and of private splits only those the Ladder "
        "shows. Running it twice changes nothing.",
    )
    v.add_argument("dir", type=Path, metavar="DIR")
    v.add_argument("--no-recompute", action="store_true",
                   help="check records, hashes and keys only (no recomputation from the labels)")
    v.add_argument("--check", action="store_true", help="write nothing: report what the gate would refuse")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=handle_validate)
    c = ss.add_parser(
        "close-round",
        help="close the open round of a private split: its shown results get their final figures (the secret part)",
        description="Closes the open round of a private split (the Ladder, benchmark/results/ladder.py). While a "
        "round is open every published figure of the split comes from its public part, and each submitter's new "
        "result is shown only when it beats their best by more than the noise. Closing it runs the publication "
        "gate, which computes for every shown result of the round its final figures on the split's secret part "
        "(never used for anything shown before), and prints the final ranking. Withheld results stay withheld. "
        "Results published afterwards belong to the next round.",
    )
    c.add_argument("split", metavar="SPLIT", help="a private split id with results, e.g. demo/pydoc-private")
    c.add_argument("--results", type=Path, default=None, metavar="DIR",
                   help="the results folder (default: $MEMBENCH_HOME/results)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=handle_close_round)
    m = ss.add_parser("migrate", help="re-key DIR: move every result file to the name its whole key gives",
                      description="Moves every readable result file (and its per-sample file) to the name its "
                      "whole key gives (benchmark/results/naming.py), so records written under an earlier key "
                      "or before names carried a key are found by their key. Reads no labels; `results "
                      "validate` does this too.")
    m.add_argument("dir", type=Path, metavar="DIR")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=handle_migrate)
    s = ss.add_parser("schema", help="print the result JSON Schema (generated from the record models)")
    s.add_argument("--write", action="store_true", help=f"rewrite {SCHEMA_FILE.name} from the record models")
    s.set_defaults(func=handle_schema)
    r = ss.add_parser(
        "reported",
        help="list and check the numbers papers reported (RESULTS/_reported/*.yaml); exit 1 on any problem",
        description="Reads every reported-results file (one YAML per paper under RESULTS/_reported/), "
        "checks it (a source for every value, values inside their metric's range, membench split, "
        "target, revision and scorer ids that resolve in the registries, external ids with a note) and "
        "lists its rows. With --pair, each row is set beside the record of the same split, target, "
        "revision, scorer setting and metric in RESULTS: the reproduced value, its 95%% interval, the "
        "difference and whether the reported value lies inside the interval, or 'reported only' and why.",
    )
    r.add_argument("--paper", default=None, metavar="KEY", help="one paper's file only (its citation key)")
    r.add_argument("--results", type=Path, default=None, metavar="DIR",
                   help="results folder holding _reported/ and the reproduced records (default: the "
                   "published leaderboard_site/results)")
    r.add_argument("--pair", action="store_true", help="set each row beside its reproduced record in DIR")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=handle_reported)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def handle_validate(args) -> int:
    recompute = not args.no_recompute
    report = validate_dir(args.dir, recompute=recompute) if args.check else publish(args.dir, recompute=recompute)
    payload = {
        "dir": str(args.dir),
        "valid": len(report.records),
        "rejected": [r.as_dict() for r in report.rejected],
        "recomputed": len(report.recomputed),
        "not_recomputed": [{"path": str(p), "reason": why} for p, why in report.not_recomputed],
        "moved": [{"from": str(a), "to": str(b)} for a, b in getattr(report, "moved", [])],
        "stamped": [str(p) for p in getattr(report, "stamped", [])],
        "diagnostics_copied": [str(p) for p in getattr(report, "diagnostics", [])],
        "withheld_by_ladder": [str(p) for p in report.withheld],
        "undecided_by_ladder": [str(p) for p in report.undecided],
    }
    _, reported_problems = reported.validate_dir(args.dir)
    payload["reported_problems"] = reported_problems
    lines = [f"refused: {r}" for r in report.rejected] + [f"reported: {p}" for p in reported_problems]
    reasons: dict[str, int] = {}
    for _, why in report.not_recomputed:
        reasons[why] = reasons.get(why, 0) + 1
    lines += [f"not recomputed ({n} file(s)): {why}" for why, n in sorted(reasons.items())]
    if report.withheld:
        lines.append(f"withheld by the Ladder: {len(report.withheld)} result(s) on private splits, not above their "
                     "owner's best by more than the noise (published nowhere)")
    if report.undecided:
        lines.append(f"not decided by the Ladder: {len(report.undecided)} result(s) on private splits not materialized "
                     "here (published nowhere until the gate runs where their labels are)")
    if payload["moved"]:
        lines.append(f"re-keyed {len(payload['moved'])} file(s) (each under the name its whole key gives)")
    lines.append(f"{len(report.records)} valid result file(s), {len(report.rejected)} refused in {args.dir}; "
                 f"{len(report.recomputed)} recomputed from per-sample scores and split labels"
                 + ("" if args.check else f"; {len(payload['stamped'])} written by the gate"))
    emit(args, payload, "\n".join(lines))
    return 0 if report.ok and not reported_problems else 1


def handle_close_round(args) -> int:
    root = args.results or results_dir()
    records = [r for _, r in ResultsStore(root).scan().records if r["split"]["id"] == args.split]
    number = close_round(root, args.split, records)
    report = publish(root)
    rows = []
    for _, record in report.records:
        ladder = record.get("ladder") or {}
        if record["split"]["id"] == args.split and ladder.get("round") == number and may_publish(record):
            shown = disclose(record)
            rows.append({"scorer": record["display"]["name"], "owner": ladder["owner"], "target": record["target"]["id"],
                         "final_auc": shown["metrics"]["auc"], "final_auc_ci95": shown["metrics"]["auc_ci95"],
                         "public_auc": shown["ladder"].get("public_auc")})
    rows.sort(key=lambda r: (r["target"], -(r["final_auc"] or 0), r["scorer"]))
    body = [[r["target"], r["scorer"], r["owner"], r["final_auc"], f"[{r['final_auc_ci95'][0]}, {r['final_auc_ci95'][1]}]",
             "-" if r["public_auc"] is None else r["public_auc"]] for r in rows]
    text = [table(body, ["target", "scorer", "owner", "final AUC", "95% CI", "public AUC"])] if body else []
    text.append(f"round {number} of {args.split} closed: {len(rows)} shown result(s) with their final figures "
                f"(the split's secret part); results published from now on belong to round {number + 1}")
    text += [f"refused: {r}" for r in report.rejected]
    emit(args, {"split": args.split, "round": number, "final": rows,
                "rejected": [r.as_dict() for r in report.rejected]}, "\n".join(text))
    return 0 if report.ok else 1


def handle_migrate(args) -> int:
    moves = migrate(args.dir)
    emit(args, {"dir": str(args.dir), "moved": [{"from": str(a), "to": str(b)} for a, b in moves]},
         "\n".join([f"{a} -> {b}" for a, b in moves] + [f"{len(moves)} file(s) re-keyed in {args.dir}"]))
    return 0


def handle_schema(args) -> int:
    if args.write:
        changed = write_schema()
        print(f"{SCHEMA_FILE} {'rewritten from the record models' if changed else 'is current'}")
        return 0
    print(render(), end="")
    return 0


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def handle_reported(args) -> int:
    folder = args.results or PUBLISHED_RESULTS
    rows, problems = reported.load_dir(folder, paper=args.paper)
    problems += reported.check_ids(rows)
    paired = reported.pair_with_results(rows, folder) if args.pair else None
    payload = {"dir": str(folder), "rows": [r.as_dict() for r in rows], "problems": problems}
    if paired is not None:
        payload["paired"] = paired
    if paired is not None:
        body = [[p["paper"], p["target"], p["split"], p["attack"], p["metric"], _fmt(p["reported"]),
                 _fmt(p["reproduced"]), "-" if not p["ci95"] else f"[{p['ci95'][0]:.3f}, {p['ci95'][1]:.3f}]",
                 _fmt(p["difference"], "+.3f"),
                 {True: "yes", False: "no", None: "-"}[p["within_interval"]],
                 p["status"] if p["comparison"] == "exact" else f"{p['status']} (analogue)"] for p in paired]
        text = [table(body, ["paper", "target", "split", "attack", "metric", "reported", "reproduced", "95% CI",
                             "diff", "within", "status"])] if body else []
        done = sum(p["status"] == "reproduced" for p in paired)
        text.append(f"{len(paired)} reported value(s), {done} reproduced in {folder}")
    else:
        body = [[r.paper.key, r.table, r.target.name, r.split.membench or f"{r.split.external} (external)",
                 r.attack.display, r.metric.label, r.printed,
                 "yes" if r.reproducible else "no"] for r in rows]
        text = [table(body, ["paper", "table", "target", "split", "attack", "metric", "printed", "reproducible"])] \
            if body else []
        papers = sorted({r.paper.key for r in rows})
        text.append(f"{len(rows)} reported value(s) from {len(papers)} paper(s) in {reported.reported_dir(folder)}; "
                    f"{sum(r.reproducible for r in rows)} reproducible with membench")
    text += [f"problem: {p}" for p in problems]
    emit(args, payload, "\n".join(text))
    return 1 if problems else 0
