"""The FastAPI app: the results API, the submission router and the built static site.

``create_app(site_dir, results_dir, routers=(), include_submissions=True)`` mounts, in this
order, the results API (``server.api``: slices of the site's own data), the submission router
(``submissions.api``), any further ``routers``, and the built site as the fallback for every
path no route matched (so routers included later, even after ``create_app`` returns, take
precedence over static files). Both folders default to the ones every command uses
(``site.default_folders``). OpenAPI docs at ``/docs`` and ``/redoc`` (their assets served from
the ``fastapi-offline`` package, so they work offline) and ``/openapi.json``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..site import default_folders
from ..submissions.api import router as submissions_router
from .api import SiteState, results_router

DOCS_ASSETS = "/docs-assets"


class StaticSite:
    """The built site as the app's fallback: static files while ``index.html`` exists (so a
    site built or rebuilt after start-up is served), otherwise a 404 saying how to build it.
    Dot-files (the build and serving markers) are never served."""

    def __init__(self, site_dir: Path):
        self.site_dir = Path(site_dir)
        self.files = StaticFiles(directory=self.site_dir, html=True, check_dir=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and any(part.startswith(".") for part in scope["path"].split("/")):
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        if scope["type"] == "http" and not (self.site_dir / "index.html").is_file():
            response = JSONResponse(
                {"detail": f"no built site in {self.site_dir.name}: run `membench leaderboard build`"},
                status_code=404,
            )
            await response(scope, receive, send)
            return
        await self.files(scope, receive, send)


def create_app(site_dir: Path | None = None, results_dir: Path | None = None, routers=(), *,
               include_submissions: bool = True) -> FastAPI:
    """The app: ``/api/...`` over ``results_dir``, the submission endpoints (with
    ``include_submissions``), ``routers``, and the built site from ``site_dir`` at ``/``."""
    default_results, default_site = default_folders()
    site_dir, results_dir = Path(site_dir or default_site), Path(results_dir or default_results)
    app = FastAPIOffline(  # a FastAPI app whose /docs and /redoc assets are served locally
        title="membench",
        version=__version__,
        description="Leaderboard of membership-inference attacks on language models: the built "
        "static site at /, and a JSON API over the published result files.",
        static_url=DOCS_ASSETS,
    )
    state = SiteState(results_dir)
    app.include_router(results_router(state))
    extra = list(routers)
    if include_submissions and submissions_router not in extra:
        extra.insert(0, submissions_router)
    for router in extra:
        app.include_router(router)
    app.state.results_dir = results_dir
    app.state.site_dir = site_dir
    app.state.site_data = state
    app.router.default = StaticSite(site_dir)
    return app
