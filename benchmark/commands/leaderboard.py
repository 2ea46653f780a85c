"""`membench leaderboard build`: the static site from validated result files."""

from __future__ import annotations

from pathlib import Path

from ..errors import MembenchError
from ..site import CARDS_DIR, build_site, default_folders, served_by
from . import emit


def register(sub):
    p = sub.add_parser("leaderboard", help="build the static leaderboard site")
    ss = p.add_subparsers(dest="leaderboard_command", metavar="SUBCOMMAND")
    b = ss.add_parser(
        "build",
        help="render result files into the site folder (default: leaderboard_site/build/)",
        description="Reads every result file under --results that the publication gate (`membench results "
        "validate`) stamped, refusing and listing the others (not through the gate, changed since, failing "
        "the record model, a per-sample hash that does not match, a duplicate key), and writes the overview, "
        "the scorer catalog, one page per split, scorer setting and target, CSV/JSON/LaTeX/Markdown downloads, "
        "the per-sample scores of public splits and the schema. Reads JSON only: the same results folder gives "
        "the same pages anywhere. The site is written beside --out and swapped in whole, so a failed build "
        "leaves the old site untouched.",
    )
    b.add_argument("--results", type=Path, default=None, help="results folder (default: $MEMBENCH_HOME/results, "
                   "the folder `membench run` and `membench serve` use)")
    b.add_argument("--out", type=Path, default=None, help="site folder (default: leaderboard_site/build, the folder "
                   "`membench serve` serves)")
    b.add_argument("--cards", type=Path, default=None, help="data cards folder (default: data_cards/)")
    b.add_argument("--strict", action="store_true",
                   help="when any result file is refused, write nothing and exit 1 (default: leave it out and go on)")
    b.add_argument("--force", action="store_true",
                   help="replace a site that a running `membench serve` serves over another results folder "
                   "(default: refuse)")
    b.add_argument("--json", action="store_true", help="print the build report as JSON")
    b.set_defaults(func=handle_build)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def handle_build(args) -> int:
    default_results, default_site = default_folders()
    results, out = Path(args.results or default_results), Path(args.out or default_site)
    server = served_by(out)
    if server and server.get("results") != str(results.resolve()) and not args.force:
        raise MembenchError(
            f"site folder {out} is served by `membench serve` (pid {server['pid']}, {server.get('url')}) over the "
            f"results in {server.get('results')}; this build reads {results.resolve()}",
            f"build with --results {server.get('results')}, choose another --out, or pass --force to replace it anyway",
        )
    report = build_site(results, out, cards_dir=args.cards or CARDS_DIR, strict=args.strict)
    lines = [f"refused (left out): {r}" for r in report.rejected]
    if not report.written:
        lines.append(f"nothing written: {len(report.rejected)} result file(s) refused and --strict given; "
                     f"{out} is unchanged")
    else:
        lines.append(
            f"site written: {report.index} ({report.n_results} results from {results}, {report.pages} pages, "
            f"{len(report.rejected)} refused, {report.seconds:.2f} s)"
        )
        if report.served_by:
            lines.append(f"note: {out} is served by `membench serve` (pid {report.served_by['pid']}, "
                         f"{report.served_by.get('url')}), which serves the new build from now on")
    emit(args, report.as_dict(), "\n".join(lines))
    return 1 if (args.strict and report.rejected) else 0
