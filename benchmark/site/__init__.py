"""The site: a static leaderboard built from validated result files, and the FastAPI app.

Never imports torch. Public face: ``build`` (returns the index path), ``build_site``
(returns a ``BuildReport`` listing refused files), ``collect``, ``DEFAULT_OUT``; the app
factory is ``benchmark.site.app.create_app`` (imported on demand: it needs FastAPI).
"""

from .build import DEFAULT_OUT, BuildReport, build, build_site
from .model import SiteData, collect_data

collect = collect_data

__all__ = ["DEFAULT_OUT", "BuildReport", "SiteData", "build", "build_site", "collect", "collect_data"]
