"""`membench cards`: write or update data_cards/<split id>.md for every registered split."""

from __future__ import annotations

from pathlib import Path

from .. import suite
from ..diagnostics import cards
from . import emit, table


def register(sub):
    p = sub.add_parser(
        "cards",
        help="write the data cards (data_cards/<split id>.md) from the registry and diagnostics",
        description="Create or update one data card per split. Generated blocks (between "
        "<!-- membench:begin/end NAME --> markers) are rewritten from the registry, the split's "
        "manifest and its latest diagnostics ($MEMBENCH_HOME/diagnostics); hand-written text "
        "outside them is kept.",
    )
    p.add_argument("splits", nargs="*", metavar="SPLIT", help="split ids or globs (default: all)")
    p.add_argument("--dir", type=Path, default=None, help="cards folder (default: the repository's data_cards/)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; say per card ok / stale / missing and exit 1 if any is not ok "
                   "(the time and commit of identical figures do not count)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=handle)


def handle(args) -> int:
    specs = suite.match_splits(args.splits) if args.splits else list(suite.splits().values())
    results = cards.write_cards(specs, args.dir or cards.CARDS_DIR, check=args.check)
    rows = [[r.split, r.status, r.verdict or "never diagnosed", r.path] for r in results]
    text = table(rows, ["split", "check" if args.check else "card", "verdict", "path"])
    failing = [r for r in results if args.check and r.status != "ok"]
    if args.check:
        text += "\n" + (f"{len(failing)} of {len(results)} card(s) missing or stale: run `membench cards` to write them"
                        if failing else f"all {len(results)} card(s) up to date")
    emit(args, [r.as_dict() for r in results], text)
    return 1 if failing else 0
