"""`membench suite ...`: the split registry and materialized splits."""

from __future__ import annotations

from . import emit, table


def register(sub):
    p = sub.add_parser("suite", help="list, materialize and inspect splits")
    ss = p.add_subparsers(dest="suite_command", metavar="SUBCOMMAND")
    ls = ss.add_parser("list", help="every split with family, track, size and status")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=handle_list)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def handle_list(args) -> int:
    from .. import suite

    rows = []
    for spec in suite.splits().values():
        fetched = suite.is_materialized(spec.id)
        size = suite.load(spec).manifest["counts"]["total"] if fetched else None
        rows.append(
            {
                "id": spec.id,
                "family": spec.family,
                "track": spec.track,
                "size": size,
                "status": "fetched" if fetched else "not fetched",
            }
        )
    text = table(
        [[r["id"], r["family"], r["track"], r["size"] or "-", r["status"]] for r in rows],
        ["split", "family", "track", "size", "status"],
    )
    emit(args, rows, text)
    return 0
