"""`membench results validate DIR`: check result files against the published schema."""

from __future__ import annotations

from pathlib import Path

from . import emit


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
