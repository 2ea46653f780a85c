"""`membench targets ...`: the target registry."""

from __future__ import annotations

from . import emit, table


def register(sub):
    p = sub.add_parser("targets", help="list registry targets")
    ss = p.add_subparsers(dest="targets_command", metavar="SUBCOMMAND")
    ls = ss.add_parser("list", help="registry targets with Hub ids and architecture shapes")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=handle_list)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def handle_list(args) -> int:
    from ..targets import targets

    rows = [
        {
            "id": t.id,
            "family": t.family,
            "hub_repo": t.hub_repo,
            "revision": t.revision,
            "params": t.params,
            "arch": t.arch,
        }
        for t in targets().values()
    ]
    shape = lambda a: f"L{a.get('num_hidden_layers')} d{a.get('hidden_size')} h{a.get('num_attention_heads')}"  # noqa: E731
    text = table(
        [[r["id"], r["family"], r["hub_repo"] or "(built locally)", r["revision"] or "-", shape(r["arch"])] for r in rows],
        ["target", "family", "hub repo", "revision", "shape"],
    )
    emit(args, rows, text)
    return 0
