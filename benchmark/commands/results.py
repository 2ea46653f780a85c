"""`membench results validate|migrate|schema`: the publication gate, re-keying, the schema."""

from __future__ import annotations

from pathlib import Path

from ..results import SCHEMA_FILE, migrate, write_schema
from ..results.gate import publish, validate_dir
from ..results.schema import render
from . import emit


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
        "only, the per-class views (score histograms, AUC by length, length statistics). The site shows only "
        "records it stamped and that have not changed since. Running it twice changes nothing.",
    )
    v.add_argument("dir", type=Path, metavar="DIR")
    v.add_argument("--no-recompute", action="store_true",
                   help="check records, hashes and keys only (no recomputation from the labels)")
    v.add_argument("--check", action="store_true", help="write nothing: report what the gate would refuse")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=handle_validate)
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
    }
    lines = [f"refused: {r}" for r in report.rejected]
    reasons: dict[str, int] = {}
    for _, why in report.not_recomputed:
        reasons[why] = reasons.get(why, 0) + 1
    lines += [f"not recomputed ({n} file(s)): {why}" for why, n in sorted(reasons.items())]
    if payload["moved"]:
        lines.append(f"re-keyed {len(payload['moved'])} file(s) (each under the name its whole key gives)")
    lines.append(f"{len(report.records)} valid result file(s), {len(report.rejected)} refused in {args.dir}; "
                 f"{len(report.recomputed)} recomputed from per-sample scores and split labels"
                 + ("" if args.check else f"; {len(payload['stamped'])} written by the gate"))
    emit(args, payload, "\n".join(lines))
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
