"""`membench results validate DIR`: check result files against the published schema;
`membench results reported`: list and check the published numbers of papers (and pair them with
reproduced records)."""

from __future__ import annotations

from pathlib import Path

from . import emit, table


def register(sub):
    p = sub.add_parser("results", help="check result files (schema, per-sample hashes, duplicates)")
    ss = p.add_subparsers(dest="results_command", metavar="SUBCOMMAND")
    v = ss.add_parser(
        "validate",
        help="validate every result file under DIR; exit 1 when any is refused",
        description="Checks every result file under DIR against the JSON Schema "
        "(benchmark/results/result.schema.json), the SHA-256 of its per-sample parquet file, that no "
        "two files share a (split, target, revision, scorer) key, and, for every split materialized "
        "here, recomputes each figure (AUC, intervals, TPRs, counts, ROC, excess over blind) from the "
        "per-sample scores and the split's labels: a record whose figures differ is refused, naming "
        "the file and the field.",
    )
    v.add_argument("dir", type=Path, metavar="DIR")
    v.add_argument("--no-recompute", action="store_true",
                   help="check schema, hashes and keys only (no recomputation from the labels)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=handle_validate)
    s = ss.add_parser("schema", help="print the result JSON Schema")
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
    from ..results import validate_dir

    scan = validate_dir(args.dir, recompute=not args.no_recompute)
    payload = {
        "dir": str(args.dir),
        "valid": len(scan.records),
        "rejected": [r.as_dict() for r in scan.rejected],
        "recomputed": len(scan.recomputed),
        "not_recomputed": [{"path": str(p), "reason": why} for p, why in scan.not_recomputed],
    }
    lines = [f"refused: {r}" for r in scan.rejected]
    reasons: dict[str, int] = {}
    for _, why in scan.not_recomputed:
        reasons[why] = reasons.get(why, 0) + 1
    lines += [f"not recomputed ({n} file(s)): {why}" for why, n in sorted(reasons.items())]
    lines.append(f"{len(scan.records)} valid result file(s), {len(scan.rejected)} refused in {args.dir}; "
                 f"{len(scan.recomputed)} recomputed from per-sample scores and split labels")
    emit(args, payload, "\n".join(lines))
    return 0 if scan.ok else 1


def handle_schema(args) -> int:
    from ..results import SCHEMA_FILE

    print(SCHEMA_FILE.read_text(), end="")
    return 0


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def handle_reported(args) -> int:
    from ..home import PUBLISHED_RESULTS
    from ..results import reported

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
