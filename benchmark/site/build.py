"""The static leaderboard: published result files in, plain HTML/CSS/SVG/CSV/JSON out.

A pure function of the results folder (plus the templates, static files and data cards of the
repository): it reads the records the publication gate stamped and the folder's diagnostics
JSON, copies public per-sample files, and never reads labels, imports the suite, the targets,
the attacks or torch, or looks at MEMBENCH_HOME, so the same folder gives byte-identical pages
anywhere (no build date on any page: the footer dates the newest result).

Output layout (``home.BUILD_DIR``, i.e. ``leaderboard_site/build/``, by default)::

    index.html                 overview: per track, the AUC-vs-blind figure, then the tables
    split/<slug>.html          verdict and figure, results (blind baselines pinned), data card
    scorers.html               the catalog: each method with its ablations and their settings
    scorer/<slug>.html         one page per scorer setting: its name, the base method's name,
                               definition and citation, its own definition; ROC (linear,
                               log-log), per-class histograms, AUC by length, AUC vs size /
                               checkpoint, controls (ROC and per-class views: public splits only)
    target/<slug>.html         counted parameters, facts, every result on one target (and, if
                               fine-tuned, the recipe that built it)
    paper/<key>.html           one page per paper of ``_reported/``: its tables, where each value
                               was read, the preset that reproduces it, every row and its status
    finetune.html              the fine-tuned track by recipe family; generated-data before/after
    data/<table id>.csv|.json|.tex|.md   every table, as data and as LaTeX / Markdown
    data/scores/<sha256>.parquet         per-sample scores of every row (public splits)
    schema/result.schema.json  the published result schema
    static/                    style.css, leaderboard.js (tabs, sorting, filtering)

The site is written into a staging folder beside the output and swapped in only when every
page was written, so a failed build (or ``strict`` with refused files) leaves the old site
as it was, and a server never serves half a site.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import MembenchError
from ..home import BUILD_DIR, REPO_ROOT, SITE_ROOT
from ..results import SCHEMA_FILE, Rejected
from .model import SiteData, collect_data, fmt
from .pages import Renderer
from .serving import MARKER as SERVING_MARKER
from .serving import served_by

log = logging.getLogger(__name__)

TEMPLATES = SITE_ROOT / "templates"
STATIC = SITE_ROOT / "static"
CARDS_DIR = REPO_ROOT / "data_cards"
DEFAULT_OUT = BUILD_DIR
SITE_MARKER = ".membench-site.json"
GENERATED = ("index.html", "scorers.html", "finetune.html", "split", "scorer", "target", "paper", "data", "schema",
             "static", SITE_MARKER, SERVING_MARKER)
_STAGING = re.compile(r"^\.(?P<name>.+)\.(partial|old)-(?P<pid>\d+)-[0-9a-f]{8}$")


@dataclass
class BuildReport:
    index: Path
    out_dir: Path
    n_results: int
    pages: int
    tables: int
    rejected: list[Rejected] = field(default_factory=list)
    seconds: float = 0.0
    written: bool = True
    served_by: dict | None = None

    def as_dict(self) -> dict:
        return {
            "index": str(self.index), "out_dir": str(self.out_dir), "written": self.written,
            "results": self.n_results, "pages": self.pages, "tables": self.tables,
            "seconds": round(self.seconds, 3), "rejected": [r.as_dict() for r in self.rejected],
            "served_by": self.served_by,
        }


def check_out_dir(out_dir: Path) -> None:
    """Refuse an output folder that holds anything but a membench site: the build replaces
    the whole folder."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise MembenchError(f"site output {out_dir} is a file, not a folder", "pass --out with a folder")
    if (out_dir / SITE_MARKER).is_file():
        return
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in GENERATED)
    if foreign:
        listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise MembenchError(
            f"site output {out_dir} is not a membench site folder (it holds {listed}); a build replaces the whole folder",
            "pass --out with a new or empty folder",
        )


def _sweep_staging(parent: Path, name: str) -> None:
    """Remove staging folders that killed builds of this site left behind."""
    for path in parent.glob(f".{name}.*-*-*"):
        m = _STAGING.match(path.name)
        if not m or m.group("name") != name:
            continue
        try:
            os.kill(int(m.group("pid")), 0)
            continue  # that build is still running
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            continue


@contextmanager
def _folder_lock(folder: Path):
    """An exclusive lock on a folder itself (flock on its descriptor): builds of sites in that
    folder swap one at a time, and no lock file is left anywhere."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _swap(staging: Path, out_dir: Path) -> None:
    """Put the staged site in place of ``out_dir`` (the live server's marker moves along)."""
    with _folder_lock(out_dir.parent):
        marker = out_dir / SERVING_MARKER
        if marker.is_file():
            shutil.copy2(marker, staging / SERVING_MARKER)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            out_dir.rename(old)
            staging.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out_dir)


def _render(data: SiteData, out: Path, cards_dir: Path) -> Renderer:
    for name in ("split", "scorer", "target", "paper", "data", "schema"):
        (out / name).mkdir()
    shutil.copytree(STATIC, out / "static")
    shutil.copy2(SCHEMA_FILE, out / "schema" / "result.schema.json")
    common = {
        "version": __version__, "suite_version": ", ".join(data.suite_versions) or "unknown",
        "last_update": (data.last_update or "")[:10] or None,
    }
    r = Renderer(data, out, TEMPLATES, cards_dir, common)
    r.publish_scores()
    r.index()
    r.catalog()
    for split in data.splits.values():
        r.split(split)
    for page in data.scorers.values():
        r.scorer(page)
    for target in data.targets.values():
        r.target(target)
    for paper in data.reported["papers"]:
        r.paper(paper)
    r.finetune()
    return r


def build_site(results_dir: Path, out_dir: Path = DEFAULT_OUT, *, cards_dir: Path = CARDS_DIR,
               strict: bool = False) -> BuildReport:
    """Build the whole site; refused result files are left out and listed in the report.

    With ``strict``, refused files make the build write nothing (``report.written`` False).
    """
    start = time.perf_counter()
    data: SiteData = collect_data(Path(results_dir))
    for r in data.refused:
        log.warning("refused result file %s", r)
    out_dir = Path(out_dir)
    report = BuildReport(index=out_dir / "index.html", out_dir=out_dir, n_results=len(data.rows), pages=0, tables=0,
                         rejected=data.refused, served_by=served_by(out_dir))
    if strict and data.rejected:
        report.written = False
        report.seconds = time.perf_counter() - start
        return report
    check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _sweep_staging(out_dir.parent, out_dir.name)
    staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        renderer = _render(data, staging, Path(cards_dir))
        (staging / SITE_MARKER).write_text(json.dumps({
            "membench_version": __version__, "results": str(Path(results_dir).resolve()),
        }))
        _swap(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.pages, report.tables = renderer.pages, renderer.tables
    report.seconds = time.perf_counter() - start
    return report


def build(results_dir: Path, out_dir: Path = DEFAULT_OUT) -> Path:
    """Build the site and return the path of its index (refused files are logged and listed)."""
    return build_site(results_dir, out_dir).index


__all__ = ["CARDS_DIR", "DEFAULT_OUT", "BuildReport", "build", "build_site", "check_out_dir", "fmt"]
