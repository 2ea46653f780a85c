"""The results API: slices of the site's own data (``site.collect``: one aggregation, not two).

Every answer comes from the published records (``results.disclose``): on a private split only
rounded aggregates, in the order the site shows them. The results folder is re-read when any of
its files changes, so results a worker publishes appear without a restart; refused files are
left out (``/api/rejected``). A split id in a path is resolved against the splits that have
results, never joined onto a folder. A query parameter an endpoint does not know, or a filter
value that names nothing known, is a 400 that names the accepted ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from threading import Lock
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from .. import __version__, suite
from ..attacks import scorers as registered_scorers
from ..errors import closest
from ..results import schema
from ..site import SiteData, collect
from ..targets.registry import targets as registered_targets

MAX_LISTED = 40
WHOLE_SPLIT = "whole"
UNITS = ("sample", "group")
KINDS = ("attack", "blind_baseline", "submission")


class Setting(BaseModel):
    name: str = Field(description="the display name of this setting, e.g. 'MIA-Tuner (epochs=10)'")
    setting: str = Field(description="what differs from the scorer's defaults ('' for the default)")
    page: str = Field(description="the setting's page on the site")
    n_results: int


class SplitSummary(BaseModel):
    id: str = Field(description="split id, e.g. demo/pydoc")
    track: str
    family: str
    content_hash: str | None = Field(description="SHA-256 of the frozen split (null on a private split: it "
                                     "depends on the secret labels)")
    n_results: int
    scorers: list[str]
    targets: list[str]
    best_blind_auc: float | None = Field(description="best blind-baseline AUC as published (diagnostics, else "
                                         "blind-baseline records), rounded to its interval")
    verdict: str | None = Field(description="clean / mild shift / shifted, when diagnosed")
    has_diagnostics: bool
    private: bool = Field(description="true when the split's membership assignment is secret; public labels "
                          "can be read by anyone, so a scorer could embed them")


class ScorerSummary(BaseModel):
    name: str = Field(description="scorer id, as in result files and URLs (its name without parameters)")
    paper_name: str = Field(description="the name papers use (Min-K%++, ReCaLL, ...); the id when none is known")
    cite: str | None = Field(None, description="short citation of the paper that defined it")
    method: str = Field(description="id of the method it belongs to (itself for a full method)")
    kind: str = Field(description="attack | blind_baseline | submission")
    versions: list[str]
    code_sha256: list[str]
    requires: list[str] = Field(description="capabilities the scorer declares")
    n_results: int
    mean_auc: float = Field(description="mean of the published (rounded) AUCs of every result of this scorer")
    settings: list[Setting]
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


class SiteState:
    """The ``SiteData`` of a results folder, collected again when any file in it changes."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = Lock()
        self._stamp = None
        self._data: SiteData | None = None

    def _fingerprint(self):
        entries = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.endswith((".json", ".parquet")):
                    st = os.stat(os.path.join(dirpath, name))
                    entries.append((dirpath, name, st.st_mtime_ns, st.st_size))
        return hash(tuple(sorted(entries)))

    def data(self) -> SiteData:
        if not self.root.is_dir():
            raise HTTPException(503, f"results folder {self.root.name} does not exist on the server")
        with self._lock:
            stamp = self._fingerprint()
            if stamp != self._stamp:
                self._data, self._stamp = collect(self.root), stamp
            return self._data


async def known_parameters_only(request: Request) -> None:
    """400 for a query parameter the endpoint does not take (a typo must not be ignored)."""
    route = request.scope.get("route")
    allowed = {p.alias for p in route.dependant.query_params} if route is not None else set()
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(400, f"unknown query parameter(s) {', '.join(unknown)}; this endpoint takes: "
                            f"{', '.join(sorted(allowed)) or 'none'}")


def _registry() -> dict[str, set[str]]:
    """Split ids, tracks, target ids and scorer ids of the registries: a filter naming one of them
    with no results yet is valid (an empty list), not an error."""
    specs = suite.splits().values()
    return {"split": {s.id for s in specs}, "track": {s.track for s in specs}, "target": set(registered_targets()),
            "scorer": set(registered_scorers())}


def _check_filter(param: str, value: str | None, present: set[str], registered=frozenset()) -> None:
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


def _item(row: dict, with_roc: bool) -> dict:
    """A result as published, with where and how the site shows it."""
    out = {k: v for k, v in row["record"].items()}
    out["metrics"] = {k: v for k, v in out["metrics"].items() if with_roc or k != "roc"}
    out["leaderboard"] = {
        "name": row["scorer_label"], "setting": row["setting_text"], "scorer_id": row["scorer_id"],
        "method": row["method"], "unit": "group" if row["unit"] == "groups" else "sample",
        "evaluated_on": row["subset"] or WHOLE_SPLIT, "auc": row["auc"], "auc_ci95": [row["auc_lo"], row["auc_hi"]],
        "rank_group": row["rank"], "vs_blind": row["vs_blind"], "auc_minus_blind": row["excess"],
        "page": f"scorer/{row['scorer_slug']}.html",
    }
    return out


def results_router(state: SiteState) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["results"], dependencies=[Depends(known_parameters_only)])
    bad = {400: {"description": "an unknown query parameter, or a filter value that names nothing known; the "
                 "message lists the valid ones"}}

    @api.get("/results", summary="Result records as published, optionally filtered", responses=bad)
    def list_results(
        split: str | None = Query(None, description="split id, e.g. demo/pydoc"),
        target: str | None = Query(None, description="target id"),
        scorer: str | None = Query(None, description="scorer id (every setting of it, e.g. mia_tuner) or a result "
                                   "name with its parameters (mia_tuner(epochs=10))"),
        track: str | None = Query(None, description="pretraining | control | finetune | demo | ..."),
        kind: str | None = Query(None, description="attack | blind_baseline | submission"),
        unit: str | None = Query(None, description="sample | group: what the metrics count (group: one score "
                                 "per user)"),
        subset: str | None = Query(None, description="'whole' for results on the whole split, or a calibration "
                                   "subset's name (cal10) for results on its evaluated rest"),
        roc: bool = Query(False, description="include the ROC points (public splits only)"),
    ) -> list[dict[str, Any]]:
        """Each item is a published result record (see ``/api/schema``; on a private split only
        rounded aggregates) with a ``leaderboard`` block: its display name, setting, rank group
        and comparison with the blind baseline, as the site shows them."""
        rows = state.data().rows
        registry = _registry() if (split or target or track or scorer) else {}
        _check_filter("split", split, {r["split"] for r in rows}, registry.get("split", set()))
        _check_filter("target", target, {r["target_id"] for r in rows}, registry.get("target", set()))
        _check_filter("scorer", scorer, {r["scorer"] for r in rows} | {r["scorer_id"] for r in rows},
                      registry.get("scorer", set()))
        _check_filter("track", track, {r["track"] for r in rows}, registry.get("track", set()))
        _check_filter("kind", kind, {r["kind"] for r in rows}, set(KINDS))
        _check_filter("unit", unit, set(), set(UNITS))
        _check_filter("subset", subset, {r["subset"] for r in rows if r["subset"]}, {WHOLE_SPLIT})
        out = []
        for row in rows:
            if ((split and row["split"] != split) or (target and row["target_id"] != target)
                    or (scorer and scorer not in (row["scorer"], row["scorer_id"]))
                    or (track and row["track"] != track) or (kind and row["kind"] != kind)
                    or (unit and ("group" if row["unit"] == "groups" else "sample") != unit)
                    or (subset and (row["subset"] or WHOLE_SPLIT) != subset)):
                continue
            out.append(_item(row, roc))
        return out

    @api.get("/splits", summary="Splits that have results, with their best blind-baseline AUC")
    def list_splits() -> list[SplitSummary]:
        out = []
        data = state.data()
        for sid in sorted(data.splits):
            s = data.splits[sid]
            rows = s["rows"] + s["blind_rows"] + [r for rest in s["rests"] for r in rest["rows"] + rest["blind_rows"]]
            out.append({
                "id": sid, "track": s["track"], "family": s["family"], "content_hash": s["content_hash"],
                "n_results": len(rows), "scorers": sorted({r["scorer"] for r in rows}),
                "targets": sorted({r["target_id"] for r in rows if not r["blind"]}),
                "best_blind_auc": s["blind_auc"], "verdict": s["verdict"],
                "has_diagnostics": bool(s["diagnostics"]), "private": s["private"],
            })
        return out

    @api.get("/splits/{split_id:path}/diagnostics", summary="The diagnostics of one split, as published")
    def split_diagnostics(split_id: str) -> dict[str, Any]:
        """The diagnostics JSON of a split that has results (on a private split: the verdict and
        the rounded blind-baseline AUCs only)."""
        split = state.data().splits.get(split_id)
        if split is None:
            raise HTTPException(404, f"no results for split {split_id!r}; see /api/splits")
        if not split["diagnostics"]:
            raise HTTPException(404, f"split {split_id!r} has no diagnostics file in the results folder; run "
                                f"`membench diagnose {split_id}` and `membench results validate`")
        return split["diagnostics"]

    @api.get("/scorers", summary="Scorers with their settings, versions, code hashes and mean AUC")
    def list_scorers() -> list[ScorerSummary]:
        by_id: dict[tuple, dict] = {}
        for page in state.data().scorers.values():
            d = page["display"]
            entry = by_id.setdefault((page["id"], page["kind"]), {
                "name": page["id"], "paper_name": d["title"], "cite": d["citation"], "method": d["method"],
                "kind": page["kind"], "versions": set(), "code_sha256": set(), "requires": set(), "n_results": 0,
                "aucs": [], "settings": [], "submission": page["submission"],
            })
            entry["versions"].update(page["versions"])
            entry["code_sha256"].update(page["code_hashes"])
            entry["n_results"] += len(page["rows"])
            entry["aucs"] += [r["auc"] for r in page["rows"]]
            for r in page["rows"]:
                entry["requires"].update(r["requires"])
            entry["settings"].append({"name": page["name"], "setting": page["setting"],
                                      "page": f"scorer/{page['slug']}.html", "n_results": len(page["rows"])})
        out = []
        for key in sorted(by_id):
            e = by_id[key]
            aucs = e.pop("aucs")
            e["versions"], e["code_sha256"], e["requires"] = sorted(e["versions"]), sorted(e["code_sha256"]), \
                sorted(e["requires"])
            e["mean_auc"] = sum(aucs) / len(aucs)
            e["settings"].sort(key=lambda s: (s["setting"] != "", s["name"]))
            out.append(e)
        return out

    @api.get("/rejected", summary="Result files the readers refused, naming the file and the field")
    def list_rejected() -> list[RejectedFile]:
        return [r.as_dict() for r in state.data().rejected]

    @api.get("/schema", summary="The JSON Schema every result record follows")
    def result_schema() -> dict[str, Any]:
        return schema()

    @api.get("/health", summary="Liveness and counts")
    def health() -> Health:
        data = state.data()
        return {"status": "ok", "version": __version__, "results": len(data.rows), "rejected": len(data.rejected)}

    return api
