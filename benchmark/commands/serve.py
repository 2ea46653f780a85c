"""`membench serve`: the built site and the JSON API (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path


def register(sub):
    p = sub.add_parser(
        "serve",
        help="serve the leaderboard site and the results API",
        description="Serves the built site at / and the JSON API at /api (docs at /docs). "
        "Builds the site first when --site holds none, or always with --rebuild.",
    )
    p.add_argument("--results", type=Path, default=None, help="default: $MEMBENCH_HOME/results")
    p.add_argument("--site", type=Path, default=None, help="built site (default: leaderboard_site/build)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--rebuild", action="store_true", help="rebuild the site before serving")
    p.set_defaults(func=handle)


def handle(args) -> int:
    import uvicorn

    from ..errors import MembenchError
    from ..home import results_dir as default_results_dir
    from ..site import DEFAULT_OUT, build_site
    from ..site.app import create_app

    results = args.results or default_results_dir()
    site = args.site or DEFAULT_OUT
    if not Path(results).is_dir():
        raise MembenchError(f"results folder {results} does not exist", "pass --results DIR or run `membench run` first")
    if args.rebuild or not (Path(site) / "index.html").is_file():
        report = build_site(results, site)
        print(f"site built: {report.index} ({report.n_results} results, {len(report.rejected)} refused)")
    print(f"membench: serving {site} and the API over {results} at http://{args.host}:{args.port}/ (docs: /docs)")
    uvicorn.run(create_app(site, results), host=args.host, port=args.port, log_level="warning")
    return 0
