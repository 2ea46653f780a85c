"""`membench leaderboard build`: the static site from result files."""

from __future__ import annotations

from pathlib import Path

from . import emit


def register(sub):
    p = sub.add_parser("leaderboard", help="build the static leaderboard site")
    ss = p.add_subparsers(dest="leaderboard_command", metavar="SUBCOMMAND")
    b = ss.add_parser("build", help="render result files into leaderboard_site/build/")
    b.add_argument("--results", type=Path, default=None, help="default: $MEMBENCH_HOME/results")
    b.add_argument("--out", type=Path, default=None, help="default: leaderboard_site/build")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=handle_build)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def handle_build(args) -> int:
    from ..home import subdir
    from ..site import DEFAULT_OUT, build

    index = build(args.results or subdir("results"), args.out or DEFAULT_OUT)
    emit(args, {"index": str(index)}, f"site written: {index}")
    return 0
