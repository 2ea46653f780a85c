"""`membench leaderboard build`: the static site from validated result files."""

from __future__ import annotations

from pathlib import Path

from . import emit


def register(sub):
    p = sub.add_parser("leaderboard", help="build the static leaderboard site")
    ss = p.add_subparsers(dest="leaderboard_command", metavar="SUBCOMMAND")
    b = ss.add_parser(
        "build",
        help="render result files into leaderboard_site/build/",
        description="Reads every result file under --results (refusing, and listing, files that fail "
        "the schema, whose per-sample hash does not match, or that duplicate a key) and writes the "
        "overview, one page per split, scorer and target, CSV/JSON downloads and the schema.",
    )
    b.add_argument("--results", type=Path, default=None, help="default: $MEMBENCH_HOME/results")
    b.add_argument("--out", type=Path, default=None, help="default: leaderboard_site/build")
    b.add_argument("--cards", type=Path, default=None, help="data cards folder (default: data_cards/)")
    b.add_argument("--strict", action="store_true", help="exit 1 when any result file was refused")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=handle_build)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def handle_build(args) -> int:
    from ..home import results_dir as default_results_dir
    from ..site import DEFAULT_OUT, build_site
    from ..site.build import CARDS_DIR

    report = build_site(args.results or default_results_dir(), args.out or DEFAULT_OUT, cards_dir=args.cards or CARDS_DIR)
    lines = [f"refused (left out): {r}" for r in report.rejected]
    lines.append(
        f"site written: {report.index} ({report.n_results} results, {report.pages} pages, "
        f"{len(report.rejected)} refused, {report.seconds:.2f} s)"
    )
    emit(args, report.as_dict(), "\n".join(lines))
    return 1 if (args.strict and report.rejected) else 0
