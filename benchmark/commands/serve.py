"""`membench serve`: the built site and the JSON API (FastAPI + uvicorn)."""

from __future__ import annotations

import signal
from pathlib import Path

import uvicorn

from ..errors import MembenchError
from ..server import create_app
from ..site import build_site, default_folders
from ..site.serving import mark_served, unmark_served


def _exit_on_term(signum, frame):
    raise SystemExit(0)


def register(sub):
    p = sub.add_parser(
        "serve",
        help="serve the leaderboard site and the results API",
        description="Serves the built site at / and the JSON API at /api (docs at /docs, offline). "
        "Builds the site first when --site holds none, or always with --rebuild. While it runs, "
        "`membench leaderboard build` into the same folder says so (and refuses a build from "
        "another results folder without --force).",
    )
    p.add_argument("--results", type=Path, default=None, help="results folder (default: $MEMBENCH_HOME/results, "
                   "the folder `membench run` and `leaderboard build` use)")
    p.add_argument("--site", type=Path, default=None, help="built site (default: leaderboard_site/build, the folder "
                   "`leaderboard build` writes)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the site before serving (default: only when "
                   "--site holds no site)")
    p.set_defaults(func=handle)


def handle(args) -> int:
    default_results, default_site = default_folders()
    results, site = Path(args.results or default_results), Path(args.site or default_site)
    if not results.is_dir():
        raise MembenchError(f"results folder {results} does not exist", "pass --results DIR or run `membench run` first")
    if args.rebuild or not (site / "index.html").is_file():
        report = build_site(results, site)
        print(f"site built: {report.index} ({report.n_results} results, {len(report.rejected)} refused)")
    url = f"http://{args.host}:{args.port}/"
    print(f"membench: serving {site} and the API over {results} at {url} (docs: /docs)", flush=True)
    mark_served(site, url=url, results_dir=results)
    # uvicorn re-raises SIGTERM after its shutdown: make that an exception, so the marker goes
    signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        uvicorn.run(create_app(site, results), host=args.host, port=args.port, log_level="warning")
    finally:
        unmark_served(site)
    return 0
