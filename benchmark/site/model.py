"""What the site shows, computed from the accepted result records (no rendering here).

Rows keep a sortable value apart from the text they display (as HELM does). Rank groups: on
one (split, target), scorers sorted by AUC; the first opens group 1 and every scorer whose
95% interval overlaps the group leader's joins it; the first that does not opens the next
group and leads it. Blind baselines are never ranked; they are pinned above the ranked rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..results import Rejected, ResultsStore

BUDGETS = {"tpr10": "0.1", "tpr1": "0.01", "tpr01": "0.001"}
UNRESOLVABLE = "unresolvable"
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmbt]?)\s*$", re.I)
_STEP = re.compile(r"^step(\d+)$")


def page_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "_"


def fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def parse_size(text) -> float | None:
    """'70m' -> 7e7, '1.4b' -> 1.4e9; numbers pass through; anything else -> None."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = _SIZE.match(str(text or ""))
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[m.group(2).lower()]


def checkpoint_step(revision) -> int | None:
    m = _STEP.match(str(revision or ""))
    return int(m.group(1)) if m else None


def _registry_size(target_id: str) -> float | None:
    try:  # the registry is plain data; importing it never loads torch
        from ..targets.registry import get_target

        return parse_size(get_target(target_id).params)
    except Exception:  # noqa: BLE001 - a local model directory or an unknown id has no size
        return None


def target_label(target: dict) -> str:
    rev = target.get("revision")
    return target["id"] if rev in (None, "", "main") else f"{target['id']}@{rev}"


def _tpr(metrics: dict, budget: str) -> tuple[float | None, str]:
    entry = metrics["tpr_at_fpr"].get(budget) or {}
    if not entry.get("resolvable"):
        return None, UNRESOLVABLE
    return entry["value"], fmt(entry["value"])


@dataclass
class SiteData:
    rows: list[dict] = field(default_factory=list)
    splits: dict = field(default_factory=dict)
    scorers: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    tracks: list[dict] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    last_update: str | None = None
    records: list[dict] = field(default_factory=list)  # the accepted records themselves


def make_row(path: Path, record: dict) -> dict:
    m, split, target, scorer = record["metrics"], record["split"], record["target"], record["scorer"]
    label = target_label(target)
    row = {
        "anchor": "r-" + page_slug(f"{split['id']}--{label}--{scorer['name']}"),
        "path": str(path),
        "split": split["id"],
        "split_slug": page_slug(split["id"]),
        "track": split["track"],
        "family": split["family"],
        "scorer": scorer["name"],
        "scorer_slug": page_slug(scorer["name"]),
        "scorer_version": scorer["version"],
        "kind": scorer["kind"],
        "code_sha256": scorer["code_sha256"],
        "target": label,
        "target_id": target["id"],
        "target_slug": None if scorer["kind"] == "blind_baseline" else page_slug(target["id"]),
        "revision": target.get("revision"),
        "blind": scorer["kind"] == "blind_baseline",
        "auc": m["auc"],
        "auc_lo": m["auc_ci95"][0],
        "auc_hi": m["auc_ci95"][1],
        "auc_text": fmt(m["auc"]),
        "ci_text": f"[{fmt(m['auc_ci95'][0])}, {fmt(m['auc_ci95'][1])}]",
        "n_members": m["n_members"],
        "n_nonmembers": m["n_nonmembers"],
        "label_valid": (split.get("label_validity") or {}).get("valid", True),
        "roc": m["roc"],
        "created_at": record["provenance"]["created_at"],
        "submission": record.get("submission"),
        "size": parse_size(target.get("n_params") or target.get("params")),
        "step": checkpoint_step(target.get("revision")),
        "excess": None,
        "excess_text": "–",
        "rank": None,
    }
    for key, budget in BUDGETS.items():
        row[key], row[key + "_text"] = _tpr(m, budget)
    return row


def rank_groups(rows: list[dict]) -> None:
    """Assign ``rank`` to ranked rows of one (split, target); see the module docstring."""
    ranked = sorted((r for r in rows if not r["blind"]), key=lambda r: -r["auc"])
    group, leader = 0, None
    for row in ranked:
        if leader is None or row["auc_hi"] < leader["auc_lo"]:
            group, leader = group + 1, row
        row["rank"] = group


def read_diagnostics(results_dir: Path, split_id: str) -> dict | None:
    *parents, last = split_id.split("/")
    path = Path(results_dir, "_diagnostics", *parents, last + ".json")
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"error": f"diagnostics file {path.name} is not valid JSON"}
    return data if isinstance(data, dict) else None


def _mean(values):
    values = [v for v in values if v is not None]
    return (sum(values) / len(values), len(values)) if values else (None, 0)


def _unique_slugs(rows: list[dict]) -> None:
    """Names that share a page slug ('a b' and 'a-b') get a short hash each, so no page is
    overwritten by another."""
    for kind, name_key in (("split", "split"), ("scorer", "scorer"), ("target", "target_id")):
        names_by_slug = defaultdict(set)
        for row in rows:
            if row[kind + "_slug"]:
                names_by_slug[row[kind + "_slug"]].add(row[name_key])
        for row in rows:
            slug = row[kind + "_slug"]
            if slug and len(names_by_slug[slug]) > 1:
                row[kind + "_slug"] = f"{slug}-{hashlib.sha256(row[name_key].encode()).hexdigest()[:8]}"


def scorer_target_matrix(track: str, means: list[dict]) -> dict:
    """Scorers x targets: one row per scorer, one column per target, the mean AUC over the
    track's splits with the number of splits behind it in each cell."""
    targets = sorted({m["target"] for m in means})
    rows = {}
    for m in means:
        row = rows.setdefault(m["scorer"], {
            "anchor": "x-" + page_slug(f"{track}--{m['scorer']}"), "scorer": m["scorer"],
            "scorer_slug": m["scorer_slug"], "kind": m["kind"], "aucs": [],
        })
        i = targets.index(m["target"])
        row[f"t{i}"] = m["mean_auc"]
        row[f"t{i}_text"] = f"{m['mean_auc']:.3f} ({m['n_splits']})"
        row[f"t{i}_n"] = m["n_splits"]
        row["aucs"].append(m["mean_auc"])
    for row in rows.values():
        for i in range(len(targets)):
            row.setdefault(f"t{i}", None)
            row.setdefault(f"t{i}_text", None)
            row.setdefault(f"t{i}_n", 0)
        row["best"] = max(row.pop("aucs"))
    return {"targets": targets, "rows": sorted(rows.values(), key=lambda r: -r["best"])}


def collect_data(results_dir: Path) -> SiteData:
    results_dir = Path(results_dir)
    scan = ResultsStore(results_dir).scan()
    data = SiteData(rejected=scan.rejected)
    data.rows = [make_row(path, record) for path, record in scan.records]
    data.records = [record for _, record in scan.records]
    _unique_slugs(data.rows)
    if not data.rows:
        return data
    data.last_update = max(r["created_at"] for r in data.rows)
    size_cache: dict[str, float | None] = {}
    for row in data.rows:
        if row["size"] is None and not row["blind"]:
            if row["target_id"] not in size_cache:
                size_cache[row["target_id"]] = _registry_size(row["target_id"])
            row["size"] = size_cache[row["target_id"]]

    # splits: blind baselines, diagnostics, excess over the best blind baseline, rank groups
    split_slugs = {r["split"]: r["split_slug"] for r in data.rows}
    for path, record in scan.records:
        sid = record["split"]["id"]
        if sid not in data.splits:
            data.splits[sid] = {
                "id": sid,
                "slug": split_slugs[sid],
                "track": record["split"]["track"],
                "family": record["split"]["family"],
                "content_hash": record["split"]["content_hash"],
                "rows": [],
                "blind_rows": [],
                "diagnostics": read_diagnostics(results_dir, sid),
            }
    for row in data.rows:
        data.splits[row["split"]]["blind_rows" if row["blind"] else "rows"].append(row)
    for split in data.splits.values():
        diag = split["diagnostics"] or {}
        best = diag.get("blind_auc") if isinstance(diag.get("blind_auc"), (int, float)) else None
        if best is None and split["blind_rows"]:
            best = max(r["auc"] for r in split["blind_rows"])
        split["blind_auc"] = best
        split["blind_auc_text"] = fmt(best)
        split["verdict"] = diag.get("verdict") if isinstance(diag.get("verdict"), str) else None
        by_target = defaultdict(list)
        for row in split["rows"]:
            by_target[row["target"]].append(row)
            if best is not None:
                row["excess"] = row["auc"] - best
                row["excess_text"] = f"{row['excess']:+.3f}"
        for rows in by_target.values():
            rank_groups(rows)
        split["rows"].sort(key=lambda r: (r["target"], r["rank"] or 0, -r["auc"]))
        split["blind_rows"].sort(key=lambda r: -r["auc"])

    # scorers and targets
    for row in data.rows:
        s = data.scorers.setdefault(
            row["scorer"],
            {"name": row["scorer"], "slug": row["scorer_slug"], "kind": row["kind"], "rows": [],
             "versions": set(), "code_hashes": set(), "submission": None},
        )
        s["rows"].append(row)
        s["versions"].add(row["scorer_version"])
        s["code_hashes"].add(row["code_sha256"])
        if row["submission"] and s["submission"] is None:
            s["submission"] = row["submission"]
        if row["blind"]:
            continue
        t = data.targets.setdefault(
            row["target_id"],
            {"id": row["target_id"], "slug": row["target_slug"], "rows": [], "revisions": set(),
             "size": row["size"], "records": []},
        )
        t["rows"].append(row)
        t["revisions"].add(row["revision"] or "main")
    for _, record in scan.records:
        if record["scorer"]["kind"] != "blind_baseline":
            data.targets[record["target"]["id"]]["records"].append(record["target"])
    for s in data.scorers.values():
        s["versions"], s["code_hashes"] = sorted(s["versions"]), sorted(s["code_hashes"])
        s["rows"].sort(key=lambda r: (r["track"], r["split"], r["target"]))
    for t in data.targets.values():
        t["revisions"] = sorted(t["revisions"])
        t["rows"].sort(key=lambda r: (r["split"], -r["auc"]))

    # tracks: the long table and the mean over splits per (scorer, target)
    by_track = defaultdict(list)
    for row in data.rows:
        by_track[row["track"]].append(row)
    order = {"pretraining": 0, "finetune": 1, "demo": 2, "control": 3}
    for name in sorted(by_track, key=lambda n: (order.get(n, 9), n)):
        rows = by_track[name]
        groups = defaultdict(list)
        for row in rows:
            if not row["blind"]:
                groups[(row["scorer"], row["target"])].append(row)
        means = []
        for (scorer, target), rs in groups.items():
            auc, n = _mean([r["auc"] for r in rs])
            tpr1, n1 = _mean([r["tpr1"] for r in rs])
            excess, _ = _mean([r["excess"] for r in rs])
            means.append({
                "anchor": "m-" + page_slug(f"{name}--{target}--{scorer}"),
                "scorer": scorer, "scorer_slug": rs[0]["scorer_slug"], "kind": rs[0]["kind"],
                "target": target, "target_slug": rs[0]["target_slug"],
                "mean_auc": auc, "mean_auc_text": fmt(auc), "n_splits": n,
                "mean_tpr1": tpr1, "mean_tpr1_text": fmt(tpr1) if n1 else UNRESOLVABLE, "n_tpr1": n1,
                "mean_excess": excess, "mean_excess_text": "–" if excess is None else f"{excess:+.3f}",
            })
        means.sort(key=lambda r: -r["mean_auc"])
        pinned = sorted((r for r in rows if r["blind"]), key=lambda r: (r["split"], -r["auc"]))
        ranked = sorted((r for r in rows if not r["blind"]), key=lambda r: (r["split"], r["target"], r["rank"] or 0, -r["auc"]))
        data.tracks.append({
            "name": name, "slug": page_slug(name), "pinned": pinned, "rows": ranked, "means": means,
            "splits": sorted({(r["split"], r["split_slug"]) for r in rows}),
            "matrix": scorer_target_matrix(name, means),
        })
    return data
