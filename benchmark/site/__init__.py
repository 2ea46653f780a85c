"""The site: a static leaderboard built from validated result files, and the FastAPI app.

Never imports torch or the attacks package. Public face: ``build`` (returns the index path),
``build_site`` (returns a ``BuildReport`` listing refused files), ``collect``,
``default_folders`` (the results folder and build folder every command uses by default),
``served_by`` (the live `membench serve` of a site folder), ``DEFAULT_OUT``; the app factory
is ``benchmark.site.app.create_app`` (imported on demand: it needs FastAPI).
"""

from pathlib import Path

from .build import CARDS_DIR, DEFAULT_OUT, BuildReport, build, build_site
from .model import SiteData, collect_data
from .serving import served_by

collect = collect_data


def default_folders() -> tuple[Path, Path]:
    """(results folder, site folder) that `leaderboard build`, `serve` and the app default to:
    ``home.results_dir()`` and ``home.BUILD_DIR``."""
    from ..home import BUILD_DIR, results_dir

    return results_dir(), BUILD_DIR


__all__ = ["CARDS_DIR", "DEFAULT_OUT", "BuildReport", "SiteData", "build", "build_site", "collect", "collect_data",
           "default_folders", "served_by"]
