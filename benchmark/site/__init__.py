"""The site: a static leaderboard built from the published records of a results folder.

A pure reader: it reads the JSON the publication gate wrote (``membench results validate``)
and never imports the suite, the targets, the attacks, the diagnostics or torch. Public face:
``build`` (returns the index path), ``build_site`` (returns a ``BuildReport`` listing refused
files), ``collect`` (the ``SiteData`` pages and the API are made from), ``served_by`` (the live
`membench serve` of a site folder), ``DEFAULT_OUT``, ``CARDS_DIR``, ``default_folders`` (the
results folder and site folder every command uses by default). The server (the FastAPI app) is
``benchmark.server``.
"""

from pathlib import Path

from .. import home
from .build import CARDS_DIR, DEFAULT_OUT, BuildReport, build, build_site
from .model import SiteData, collect_data
from .serving import served_by

collect = collect_data


def default_folders() -> tuple[Path, Path]:
    """(results folder, site folder) that `leaderboard build`, `serve` and the app default to:
    ``home.results_dir()`` and ``home.BUILD_DIR``."""
    return home.results_dir(), home.BUILD_DIR


__all__ = ["CARDS_DIR", "DEFAULT_OUT", "BuildReport", "SiteData", "build", "build_site", "collect", "collect_data",
           "default_folders", "served_by"]
