"""The FastAPI app: the built static site plus a JSON API over the results.

``create_app(site_dir, results_dir, routers=())`` is the factory (stable: the submissions
package adds its router through ``routers`` or, when ``benchmark.submissions.api`` is
importable and defines ``router``, automatically); both folders default to the ones every
command uses (``benchmark.site.default_folders``). OpenAPI docs at ``/docs`` and ``/redoc``
(their assets served from the ``fastapi-offline`` package, so they work offline) and
``/openapi.json``.
The results folder is re-read when its files change, so results a worker publishes appear
without a restart; refused files are left out (see ``/api/rejected``). A filter value that
matches nothing known is a 400 that names the valid values.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from threading import Lock
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from .. import __version__
from ..errors import closest
from ..results import ResultsStore, public_view, schema
from .catalog import catalog, scorer_info
from ..diagnostics import read_saved

log = logging.getLogger(__name__)


class SplitSummary(BaseModel):
    id: str = Field(description="split id, e.g. demo/pydoc")
    track: str
    family: str
    content_hash: str = Field(description="SHA-256 of the frozen split")
    n_results: int
    scorers: list[str]
    targets: list[str]
    best_blind_auc: float | None = Field(description="best blind-baseline AUC (diagnostics, else blind records)")
    verdict: str | None = Field(description="clean / mild shift / shifted, when diagnosed")
    has_diagnostics: bool
    private: bool = Field(description="true when the split's membership assignment is secret; public labels "
                          "can be read by anyone, so a scorer could embed them")


class ScorerSummary(BaseModel):
    name: str = Field(description="scorer id, as in result files and URLs")
    paper_name: str = Field(description="the name papers use (Min-K%++, ReCaLL, ...); the id when none is known")
    cite: str | None = Field(None, description="short citation of the paper that defined it")
    kind: str = Field(description="attack | blind_baseline | submission")
    versions: list[str]
    code_sha256: list[str]
    requires: list[str] = Field(description="capabilities the scorer declares")
    n_results: int
    mean_auc: float = Field(description="mean AUC over every result of this scorer")
    submission: dict[str, Any] | None = Field(None, description="submission metadata, for submitted scorers")


class Health(BaseModel):
    status: str
    version: str
    results: int
    rejected: int


class RejectedFile(BaseModel):
    path: str
    field: str
    message: str


class _Results:
    """The accepted records of a results folder, re-scanned when any file in it changes."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = Lock()
        self._stamp = None
        self._scan = None

    def _fingerprint(self):
        entries = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.endswith((".json", ".parquet")):
                    st = os.stat(os.path.join(dirpath, name))
                    entries.append((dirpath, name, st.st_mtime_ns, st.st_size))
        return hash(tuple(sorted(entries)))

    def scan(self):
        if not self.root.is_dir():
            raise HTTPException(503, f"results folder {self.root} does not exist")
        with self._lock:
            stamp = self._fingerprint()
            if stamp != self._stamp:
                self._scan, self._stamp = ResultsStore(self.root).scan(), stamp
            return self._scan


MAX_LISTED = 40


def _registry() -> dict[str, set[str]]:
    """Split ids, tracks and target ids of the registries: a filter naming one of them with no
    results yet is valid (an empty list), not an error."""
    out = {"split": set(), "track": set(), "target": set()}
    try:
        from ..suite import splits

        for spec in splits().values():
            out["split"].add(spec.id)
            out["track"].add(spec.track)
    except Exception:  # noqa: BLE001 - the registries are optional for serving results
        pass
    try:
        from ..targets.registry import targets

        out["target"].update(targets())
    except Exception:  # noqa: BLE001
        pass
    return out


def _check_filter(param: str, value: str | None, present: set[str], registered: set[str] = frozenset()) -> None:
    """400 naming the valid values (those with results, and the closest ones) for a filter
    value that names nothing known."""
    if value is None or value in present or value in registered:
        return
    close = closest(value, sorted(present | set(registered)))
    listed = sorted(present)
    message = f"unknown {param} '{value}'; valid choices: {', '.join(listed[:MAX_LISTED]) or '(none)'}"
    if len(listed) > MAX_LISTED:
        message += f" and {len(listed) - MAX_LISTED} more"
    if registered:
        message += f" (those with results; any {param} of the registry is accepted too)"
    if close:
        message += f"; closest: {', '.join(close)}"
    raise HTTPException(400, message)


def _summary(record: dict, with_roc: bool) -> dict:
    """A record as the public sees it (``results.public_view``: metrics at the precision their
    intervals support, the ROC curve on a fixed FPR grid), without the ROC unless asked for."""
    out = public_view(record)
    if not with_roc:
        out["metrics"] = {k: v for k, v in out["metrics"].items() if k != "roc"}
    return out


def _api_router(results: _Results) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["results"])

    @api.get("/results", summary="Result records, optionally filtered",
             responses={400: {"description": "a filter value names nothing known; the message lists the valid ones"}})
    def list_results(
        split: str | None = Query(None, description="split id, e.g. demo/pydoc"),
        target: str | None = Query(None, description="target id"),
        scorer: str | None = Query(None, description="scorer name"),
        track: str | None = Query(None, description="pretraining | control | finetune | demo"),
        kind: str | None = Query(None, description="attack | blind_baseline | submission"),
        roc: bool = Query(False, description="include the ROC points"),
        unit: str | None = Query(None, description="sample | group: what the metrics count (group: one score "
                                 "per user, top-level kind: group)"),
    ) -> list[dict[str, Any]]:
        """Each item is a result record as published (see ``/api/schema``). A filter value that
        names nothing known is a 400 listing the valid values."""
        records = [rec for _, rec in results.scan().records]
        registry = _registry() if (split or target or track) else {}
        _check_filter("split", split, {r["split"]["id"] for r in records}, registry.get("split", set()))
        _check_filter("target", target, {r["target"]["id"] for r in records}, registry.get("target", set()))
        _check_filter("scorer", scorer, {r["scorer"]["name"] for r in records}, set(catalog()))
        _check_filter("track", track, {r["split"]["track"] for r in records}, registry.get("track", set()))
        _check_filter("kind", kind, {r["scorer"]["kind"] for r in records},
                      set(schema()["properties"]["scorer"]["properties"]["kind"]["enum"]))
        _check_filter("unit", unit, {r.get("kind") or "sample" for r in records}, {"sample", "group"})
        out = []
        for rec in records:
            if unit and (rec.get("kind") or "sample") != unit:
                continue
            if split and rec["split"]["id"] != split:
                continue
            if target and rec["target"]["id"] != target:
                continue
            if scorer and rec["scorer"]["name"] != scorer:
                continue
            if track and rec["split"]["track"] != track:
                continue
            if kind and rec["scorer"]["kind"] != kind:
                continue
            out.append(_summary(rec, roc))
        return out

    @api.get("/splits", summary="Splits that have results, with their best blind-baseline AUC")
    def list_splits() -> list[SplitSummary]:
        splits: dict[str, dict] = {}
        for _, rec in results.scan().records:
            s = rec["split"]
            entry = splits.setdefault(s["id"], {
                "id": s["id"], "track": s["track"], "family": s["family"], "content_hash": s["content_hash"],
                "n_results": 0, "scorers": set(), "targets": set(), "best_blind_auc": None,
                "private": s.get("private") is True,
            })
            entry["n_results"] += 1
            entry["scorers"].add(rec["scorer"]["name"])
            if rec["scorer"]["kind"] == "blind_baseline":
                auc = rec["metrics"]["auc"]
                entry["best_blind_auc"] = max(auc, entry["best_blind_auc"] or 0.0)
            else:
                entry["targets"].add(rec["target"]["id"])
        out = []
        for sid in sorted(splits):
            entry = splits[sid]
            diag = read_saved(sid, results.root, entry["content_hash"]) or {}
            entry["scorers"], entry["targets"] = sorted(entry["scorers"]), sorted(entry["targets"])
            entry["verdict"] = diag.get("verdict")
            entry["has_diagnostics"] = bool(diag)
            if isinstance(diag.get("blind_auc"), (int, float)):
                entry["best_blind_auc"] = diag["blind_auc"]
            out.append(entry)
        return out

    @api.get("/splits/{split_id:path}/diagnostics", summary="The diagnostics of one split")
    def split_diagnostics(split_id: str) -> dict[str, Any]:
        """The diagnostics JSON the diagnostics stage wrote for this split."""
        hashes = {rec["split"]["id"]: rec["split"]["content_hash"] for _, rec in results.scan().records}
        diag = read_saved(split_id, results.root, hashes.get(split_id))
        if diag is None:
            if split_id not in hashes:
                raise HTTPException(404, f"no results for split {split_id!r}; see /api/splits")
            raise HTTPException(
                404, f"split {split_id!r} has no diagnostics file (_diagnostics/{split_id}.json); "
                f"run `membench diagnose {split_id}`",
            )
        return diag

    @api.get("/scorers", summary="Scorers with their versions, code hashes and mean AUC")
    def list_scorers() -> list[ScorerSummary]:
        scorers: dict[str, dict] = {}
        for _, rec in results.scan().records:
            sc = rec["scorer"]
            info = scorer_info(sc["name"])
            entry = scorers.setdefault(sc["name"], {
                "name": sc["name"], "paper_name": info.name, "cite": info.cite, "kind": sc["kind"],
                "versions": set(), "code_sha256": set(), "requires": sc["requires"], "n_results": 0, "aucs": [],
                "submission": rec.get("submission"),
            })
            entry["versions"].add(sc["version"])
            entry["code_sha256"].add(sc["code_sha256"])
            entry["n_results"] += 1
            entry["aucs"].append(rec["metrics"]["auc"])
        out = []
        for name in sorted(scorers):
            e = scorers[name]
            aucs = e.pop("aucs")
            e["versions"], e["code_sha256"] = sorted(e["versions"]), sorted(e["code_sha256"])
            e["mean_auc"] = sum(aucs) / len(aucs)
            out.append(e)
        return out

    @api.get("/rejected", summary="Result files the store refused, naming the file and the field")
    def list_rejected() -> list[RejectedFile]:
        return [r.as_dict() for r in results.scan().rejected]

    @api.get("/schema", summary="The JSON Schema every result record follows")
    def result_schema() -> dict[str, Any]:
        return schema()

    @api.get("/health", summary="Liveness and counts")
    def health() -> Health:
        scan = results.scan()
        return {"status": "ok", "version": __version__, "results": len(scan.records), "rejected": len(scan.rejected)}

    return api


def _submission_router():
    name = "benchmark.submissions.api"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (name, "benchmark.submissions"):
            return None  # no submissions package in this install: the API serves results only
        log.warning("submissions API not available: %s", exc)
        return None
    except ImportError as exc:
        log.warning("submissions API not available: %s", exc)
        return None
    return getattr(module, "router", None)


class _Site:
    """The built site as the app's fallback: static files while ``index.html`` exists (so a
    site built or rebuilt after start-up is served), otherwise a 404 saying how to build it."""

    def __init__(self, site_dir: Path):
        self.site_dir = Path(site_dir)
        self.files = StaticFiles(directory=self.site_dir, html=True, check_dir=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and any(part.startswith(".") for part in scope["path"].split("/")):
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return  # dot-files (the build and serving markers) are not part of the site
        if scope["type"] == "http" and not (self.site_dir / "index.html").is_file():
            response = JSONResponse(
                {"detail": f"no built site in {self.site_dir}: run `membench leaderboard build --out {self.site_dir}`"},
                status_code=404,
            )
            await response(scope, receive, send)
            return
        await self.files(scope, receive, send)


DOCS_ASSETS = "/docs-assets"


def create_app(site_dir: Path | None = None, results_dir: Path | None = None, routers=(), *,
               include_submissions: bool = True) -> FastAPI:
    """The app: ``/api/...`` over ``results_dir`` and the built site from ``site_dir`` at ``/``
    (by default the results folder and site folder of ``benchmark.site.default_folders``).

    ``routers`` are extra APIRouters to include (e.g. the submissions endpoints); with
    ``include_submissions`` the router of ``benchmark.submissions.api`` is included when that
    module exists.
    """
    if site_dir is None or results_dir is None:
        from . import default_folders

        default_results, default_site = default_folders()
        site_dir, results_dir = site_dir or default_site, results_dir or default_results
    site_dir, results = Path(site_dir), _Results(Path(results_dir))
    app = FastAPIOffline(  # a FastAPI app whose /docs and /redoc assets are served locally
        title="membench",
        version=__version__,
        description="Leaderboard of membership-inference attacks on language models: the built "
        "static site at /, and a JSON API over the validated result files.",
        static_url=DOCS_ASSETS,
    )
    app.include_router(_api_router(results))
    extra = list(routers)
    if include_submissions:
        sub = _submission_router()
        if sub is not None and sub not in extra:
            extra.append(sub)
    for router in extra:
        app.include_router(router)
    app.state.results_dir = results.root
    app.state.site_dir = site_dir

    # The site answers whatever no route matched, so routers included later (even after
    # create_app returns) always take precedence over static files.
    app.router.default = _Site(site_dir)

    return app
