"""What the site shows, computed from the accepted result records (no rendering here).

Rows keep a sortable value apart from the text they display (as HELM does), and every figure
is rounded to the precision its interval supports (``precision``). Tracks are whatever the
records say (``split.track``): a new track needs no code here. Within a track, results on
private splits (``split.private: true``, a secret assignment) are kept apart from results on
public splits, whose labels anyone can read.

Rank groups: on one (split, target), scorers sorted by AUC; the first opens group 1 and every
scorer whose 95% interval overlaps the group leader's joins it; the first that does not opens
the next group and leads it. Blind baselines are never ranked; they are pinned above the
ranked rows. Rank groups and "AUC − blind" mean nothing for a model-free scorer (it is a blind
baseline of its own) or on a control split (both classes share membership status, so any AUC
above 0.5 is shift): there they are "not applicable", and so is "vs blind".

A record on the evaluated rest of a calibration subset (``evaluation_subset``: a trainable
scorer's, or another scorer's recomputed on that rest) belongs to a table of its own: on the
split page one table per subset, with its own pinned blind baselines, "vs blind" and rank
groups (``split["rests"]``); elsewhere its "evaluated on" cell names the subset, and means over
splits use whole-split rows only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..diagnostics import read_saved
from ..results import Rejected, ResultsStore, record_key, roc_on_grid
from . import precision
from .catalog import scorer_info, setting_text

BUDGETS = {"tpr10": "0.1", "tpr1": "0.01", "tpr01": "0.001"}
UNRESOLVABLE = "unresolvable"
NOT_APPLICABLE = "not applicable"
NO_BLIND = "no blind baseline"
CONTROL_TRACKS = {"control"}
TRACK_ORDER = {"pretraining": 0, "finetune": 1, "demo": 2, "control": 3}
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


def nominal_size(target_id: str) -> str | None:
    """The registry's nominal size ("1m", "160m") of a target, or None."""
    try:  # the registry is plain data; importing it never loads torch
        from ..targets.registry import get_target

        return get_target(target_id).params or None
    except Exception:  # noqa: BLE001 - a local model directory or an unknown id has no size
        return None


def target_label(target: dict) -> str:
    rev = target.get("revision")
    return target["id"] if rev in (None, "", "main") else f"{target['id']}@{rev}"


def is_model_free(record: dict) -> bool:
    """A scorer that never touches the model: a blind baseline, or a submission (or any
    scorer) that declares no capability at all."""
    scorer = record["scorer"]
    return scorer["kind"] == "blind_baseline" or not scorer.get("requires") or record["target"]["id"] == "none"


def unit_of(record: dict) -> str:
    """What a record's metrics count: samples, or groups (user-level records, ``kind: group``)."""
    kind = record.get("kind") or record["metrics"].get("kind")
    return "groups" if kind == "group" else "samples"


def _tpr(metrics: dict, budget: str, decimals: int) -> tuple[float | None, str, str | None]:
    entry = metrics["tpr_at_fpr"].get(budget) or {}
    if not entry.get("resolvable"):
        return None, UNRESOLVABLE, UNRESOLVABLE
    ci = entry.get("ci95")
    d = precision.decimals_for(*ci) if isinstance(ci, list) and len(ci) == 2 else decimals
    value = precision.rounded(entry["value"], d)
    return value, precision.text(value, d), None


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


def evaluated_on(record: dict) -> dict:
    """The calibration subset whose evaluated rest a record is on (None: the whole split)."""
    sub = record.get("evaluation_subset")
    if not isinstance(sub, dict):
        return {"subset": None, "evaluated_on": "whole split", "subset_n": None, "subset_n_calibration": None}
    return {"subset": str(sub.get("name")), "subset_n": sub.get("n"), "subset_n_calibration": sub.get("n_calibration"),
            "evaluated_on": f"rest of {sub.get('name')} ({sub.get('n')}; {sub.get('n_calibration')} calibration "
                            "texts out)"}


def make_row(path: Path, record: dict) -> dict:
    m, split, target, scorer = record["metrics"], record["split"], record["target"], record["scorer"]
    label = target_label(target)
    info = scorer_info(scorer["name"])
    lo, hi = m["auc_ci95"]
    d = precision.decimals_for(lo, hi)
    blind = scorer["kind"] == "blind_baseline"
    model_free = is_model_free(record)
    row = {
        "path": str(path),
        "scores_path": str(Path(path).parent / record["per_sample"]["file"]),
        "scores_sha256": record["per_sample"]["sha256"],
        "key": record_key(record),
        "split": split["id"],
        "split_slug": page_slug(split["id"]),
        "track": split["track"],
        "family": split["family"],
        "private": split.get("private") is True,
        "control": split["track"] in CONTROL_TRACKS,
        "scorer": scorer["name"],
        "scorer_name": info.name,
        "params": scorer.get("params") if isinstance(scorer.get("params"), dict) else {},
        "setting": "",
        "scorer_slug": page_slug(scorer["name"]),
        "scorer_version": scorer["version"],
        "kind": scorer["kind"],
        "requires": list(scorer.get("requires") or []),
        "model_free": model_free,
        "code_sha256": scorer["code_sha256"],
        "target": label,
        "target_id": target["id"],
        "target_slug": None if model_free and target["id"] == "none" else page_slug(target["id"]),
        "revision": target.get("revision"),
        "blind": blind,
        "unit": unit_of(record),
        "decimals": d,
        "auc": precision.rounded(m["auc"], d),
        "auc_lo": precision.rounded(lo, d),
        "auc_hi": precision.rounded(hi, d),
        "auc_text": precision.text(m["auc"], d),
        "ci_text": precision.interval_text(lo, hi, d),
        "auc_ci_text": f"{precision.text(m['auc'], d)} {precision.interval_text(lo, hi, d)}",
        "n_members": m["n_members"],
        "n_nonmembers": m["n_nonmembers"],
        "label_valid": (split.get("label_validity") or {}).get("valid", True),
        # a private split's labels are secret: its ROC only on the public grid (a curve with one
        # step per sample would hand over every label in score order)
        "roc": roc_on_grid(m["roc"]["fpr"], m["roc"]["tpr"]) if split.get("private") is True else m["roc"],
        "created_at": record["provenance"]["created_at"],
        "submission": record.get("submission"),
        "recipe": (record.get("provenance") or {}).get("recipe"),
        "n_parameters": target.get("n_parameters") if isinstance(target.get("n_parameters"), int) else None,
        "size": None,
        "size_measured": False,
        "step": checkpoint_step(target.get("revision")),
        "excess": None,
        "excess_text": "–",
        "excess_why": NO_BLIND,
        "vs_blind": None,
        "vs_blind_why": NO_BLIND,
        "rank": None,
        "rank_why": None,
        **evaluated_on(record),
    }
    row["auc_full"] = m["auc"]  # unrounded, for comparisons only; never displayed or written
    row["auc_lo_full"], row["auc_hi_full"] = lo, hi
    row["rank_text"] = row["vs_blind_text"] = "–"
    if row["n_parameters"]:
        row["size"], row["size_measured"] = float(row["n_parameters"]), True
    for key, budget in BUDGETS.items():
        row[key], row[key + "_text"], row[key + "_why"] = _tpr(m, budget, d)
    unit = "" if row["unit"] == "samples" else f" {row['unit']}"
    row["n_text"] = f"{row['n_members']} / {row['n_nonmembers']}{unit}"
    row["n_total"] = row["n_members"] + row["n_nonmembers"]
    if model_free or row["control"]:
        why = "model-free scorer" if model_free else "control split"
        row["rank_why"] = row["excess_why"] = row["vs_blind_why"] = f"{NOT_APPLICABLE} ({why})"
        row["excess_text"] = row["rank_text"] = row["vs_blind_text"] = "n/a"
    return row


def rank_groups(rows: list[dict]) -> None:
    """Assign ``rank`` to the ranked rows of one (split, target); see the module docstring."""
    ranked = sorted((r for r in rows if not r["blind"] and not r.get("model_free") and not r.get("control")),
                    key=lambda r: -r["auc"])
    group, leader = 0, None
    for row in ranked:
        if leader is None or row["auc_hi"] < leader["auc_lo"]:
            group, leader = group + 1, row
        row["rank"] = group


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


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


def _name_settings(rows: list[dict]) -> None:
    """Label each row's scorer setting (the parameters that differ from the defaults) and give
    every row an anchor that is unique on the whole site."""
    varying = defaultdict(set)
    values = defaultdict(lambda: defaultdict(set))
    for row in rows:
        for k, v in row["params"].items():
            values[row["scorer"]][k].add(json.dumps(v, sort_keys=True, default=str))
    for scorer, by_key in values.items():
        varying[scorer] = {k for k, vs in by_key.items() if len(vs) > 1}
    for row in rows:
        row["setting"] = setting_text(row["scorer"], row["params"], varying[row["scorer"]])
        row["setting_text"] = row["setting"] or "default"
        row["scorer_label"] = row["scorer_name"] + (f" ({row['setting']})" if row["setting"] else "")
        base = page_slug(f"{row['split']}--{row['target']}--{row['scorer']}" + (f"--{row['setting']}" if row["setting"] else "")
                         + (f"--rest-{row['subset']}" if row["subset"] else ""))
        row["anchor"] = "r-" + base
    seen = defaultdict(int)
    for row in rows:  # settings that print alike (or keys beyond the four) still get distinct anchors
        seen[row["anchor"]] += 1
    for row in rows:
        if seen[row["anchor"]] > 1:
            row["anchor"] += "-" + hashlib.sha256(repr(row["key"]).encode()).hexdigest()[:8]


def _mean(values):
    values = [v for v in values if v is not None]
    return (sum(values) / len(values), len(values)) if values else (None, 0)


def primary_target(rows: list[dict]) -> str | None:
    """The target a split's overview panel shows: the one with the most results there (ties:
    the largest model, then the name)."""
    counts = defaultdict(int)
    sizes = {}
    for r in rows:
        if not r["blind"] and r["target_id"] != "none":
            counts[r["target"]] += 1
            sizes[r["target"]] = r["size"] or 0
    if not counts:
        return None
    return max(counts, key=lambda t: (counts[t], sizes[t], t))


def scorer_target_matrix(prefix: str, means: list[dict]) -> dict:
    """Scorers x targets: one row per scorer setting, one column per target, the mean AUC over
    the splits with the number of splits behind it in each cell."""
    targets = sorted({m["target"] for m in means})
    rows = {}
    for m in means:
        row = rows.setdefault(m["scorer_label"], {
            "anchor": "x-" + page_slug(f"{prefix}--{m['scorer_label']}"), "scorer": m["scorer"],
            "scorer_label": m["scorer_label"], "scorer_slug": m["scorer_slug"], "kind": m["kind"], "aucs": [],
        })
        i = targets.index(m["target"])
        row[f"t{i}"] = m["mean_auc"]
        row[f"t{i}_text"] = f"{m['mean_auc_text']} ({m['n_splits']})"
        row[f"t{i}_n"] = m["n_splits"]
        row["aucs"].append(m["mean_auc"])
    for row in rows.values():
        for i in range(len(targets)):
            row.setdefault(f"t{i}", None)
            row.setdefault(f"t{i}_text", None)
            row.setdefault(f"t{i}_n", 0)
        row["best"] = max(row.pop("aucs"))
    return {"targets": targets, "rows": sorted(rows.values(), key=lambda r: -r["best"])}


def _means(prefix: str, rows: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for row in rows:
        if not row["blind"]:
            groups[(row["scorer_label"], row["target"])].append(row)
    means = []
    for (label, target), rs in groups.items():
        d = min(r["decimals"] for r in rs)
        auc, n = _mean([r["auc_full"] for r in rs])
        tpr1, n1 = _mean([r["tpr1"] for r in rs])
        applicable = [r for r in rs if r["excess_why"] is None]
        excess, _ = _mean([r["excess"] for r in applicable])
        first = rs[0]
        means.append({
            "anchor": "m-" + page_slug(f"{prefix}--{target}--{label}"),
            "scorer": first["scorer"], "scorer_label": label, "scorer_slug": first["scorer_slug"],
            "kind": first["kind"], "target": target, "target_slug": first["target_slug"],
            "mean_auc": precision.rounded(auc, d), "mean_auc_text": precision.text(auc, d), "n_splits": n,
            "mean_tpr1": precision.rounded(tpr1, d) if n1 else None,
            "mean_tpr1_text": precision.text(tpr1, d) if n1 else UNRESOLVABLE, "n_tpr1": n1,
            "mean_tpr1_why": None if n1 else UNRESOLVABLE,
            "mean_excess": precision.rounded(excess, d) if excess is not None else None,
            "mean_excess_text": precision.text(excess, d, sign=True) if excess is not None else "n/a",
            "mean_excess_why": None if excess is not None else (first["excess_why"] or NO_BLIND),
        })
    means.sort(key=lambda r: -(r["mean_auc"] or 0))
    return means


def _panels(splits: list[dict]) -> list[dict]:
    """One overview panel per split: each scorer's AUC on the split's primary target."""
    panels = []
    for split in splits:
        target = primary_target(split["rows"])
        rows = sorted((r for r in split["rows"] if r["target"] == target), key=lambda r: -r["auc_full"])
        rows += sorted((r for r in split["rows"] if r["model_free"] and r["target_id"] == "none"),
                       key=lambda r: -r["auc_full"])
        if not rows:
            continue
        panels.append({"split": split, "target": target, "rows": rows})
    return panels


def _blind_summary(split: dict) -> None:
    diag = split["diagnostics"] or {}
    best = diag.get("blind_auc") if _num(diag.get("blind_auc")) else None
    ci = diag.get("blind_auc_ci95")
    ci = ci if isinstance(ci, list) and len(ci) == 2 and all(map(_num, ci)) else None
    if best is None and split["blind_rows"]:
        top = max(split["blind_rows"], key=lambda r: r["auc_full"])
        best, ci = top["auc_full"], [top["auc_lo_full"], top["auc_hi_full"]]
    d = precision.decimals_for(*ci) if ci else precision.DEGENERATE_DECIMALS
    split["blind_auc"] = best
    split["blind_ci"] = ci
    split["blind_auc_text"] = precision.text(best, d)
    split["blind_ci_text"] = precision.interval_text(*ci, d) if ci else ""
    verdict = diag.get("verdict") if isinstance(diag.get("verdict"), str) else None
    split["verdict"] = verdict
    split["verdict_class"] = page_slug(verdict or "not diagnosed").lower()


def _compare_to_blind(split: dict) -> None:
    best = split["blind_auc"]
    for row in split["rows"]:
        if best is None or row["excess_why"] not in (None, NO_BLIND):
            continue
        excess = row["auc_full"] - best
        row["excess"] = precision.rounded(excess, row["decimals"])
        row["excess_text"] = precision.text(excess, row["decimals"], sign=True)
        row["excess_why"] = None
        row["vs_blind"] = "above" if row["auc_lo_full"] > best else "not above"
        row["vs_blind_text"] = f"{row['vs_blind']} {row['excess_text']}"
        row["vs_blind_why"] = None
    for row in split["rows"]:
        if row["excess_why"] == NO_BLIND:
            row["vs_blind_text"] = "–"


def collect_data(results_dir: Path) -> SiteData:
    results_dir = Path(results_dir)
    scan = ResultsStore(results_dir).scan()
    data = SiteData(rejected=scan.rejected)
    data.rows = [make_row(path, record) for path, record in scan.records]
    data.records = [record for _, record in scan.records]
    _unique_slugs(data.rows)
    _name_settings(data.rows)
    if not data.rows:
        return data
    data.last_update = max(r["created_at"] for r in data.rows)
    nominal: dict[str, str | None] = {}
    measured = {}
    for row in data.rows:
        if row["n_parameters"]:
            measured.setdefault(row["target_id"], row["n_parameters"])
    for row in data.rows:
        if row["size"] is None and row["target_id"] != "none":
            if row["target_id"] in measured:
                row["size"], row["size_measured"] = float(measured[row["target_id"]]), True
            else:
                if row["target_id"] not in nominal:
                    nominal[row["target_id"]] = nominal_size(row["target_id"])
                row["size"] = parse_size(nominal[row["target_id"]])

    # splits: blind baselines, diagnostics, excess over the best blind baseline, rank groups
    for row in data.rows:
        if row["split"] not in data.splits:
            rec = next(r for p, r in scan.records if r["split"]["id"] == row["split"])
            data.splits[row["split"]] = {
                "id": row["split"], "slug": row["split_slug"], "track": row["track"], "family": row["family"],
                "private": row["private"], "control": row["control"], "content_hash": rec["split"]["content_hash"],
                "rows": [], "blind_rows": [], "rests": {},
                "diagnostics": read_saved(row["split"], results_dir, rec["split"]["content_hash"]),
            }
        table = data.splits[row["split"]]
        if row["subset"]:  # the evaluated rest of a calibration subset: a table of its own
            table = table["rests"].setdefault(row["subset"], {
                "name": row["subset"], "slug": page_slug(row["subset"]), "n": row["subset_n"],
                "n_calibration": row["subset_n_calibration"], "control": table["control"], "diagnostics": None,
                "rows": [], "blind_rows": []})
        table["blind_rows" if row["blind"] else "rows"].append(row)
    for split in data.splits.values():
        split["rests"] = [split["rests"][k] for k in sorted(split["rests"])]
        for table in [split] + split["rests"]:
            _blind_summary(table)
            _compare_to_blind(table)
            by_target = defaultdict(list)
            for row in table["rows"]:
                by_target[row["target"]].append(row)
            for rows in by_target.values():
                rank_groups(rows)
            for row in table["rows"]:
                if row["rank"] is not None:
                    row["rank_text"] = str(row["rank"])
            table["rows"].sort(key=lambda r: (r["target"], r["rank"] or 1e9, -r["auc_full"]))
            table["blind_rows"].sort(key=lambda r: -r["auc_full"])
        split["primary_target"] = primary_target(split["rows"])

    # scorers and targets
    for row in data.rows:
        info = scorer_info(row["scorer"])
        s = data.scorers.setdefault(row["scorer"], {
            "name": row["scorer"], "display": info.name, "info": info, "slug": row["scorer_slug"],
            "kind": row["kind"], "model_free": row["model_free"], "rows": [], "versions": set(),
            "code_hashes": set(), "submission": None, "settings": set(),
        })
        s["rows"].append(row)
        s["versions"].add(row["scorer_version"])
        s["code_hashes"].add(row["code_sha256"])
        s["settings"].add(row["setting"])
        if row["submission"] and s["submission"] is None:
            s["submission"] = row["submission"]
        if row["target_slug"] is None:
            continue
        t = data.targets.setdefault(row["target_id"], {
            "id": row["target_id"], "slug": row["target_slug"], "rows": [], "revisions": set(),
            "n_parameters": set(), "nominal": nominal.get(row["target_id"]), "records": [], "recipes": [],
        })
        t["rows"].append(row)
        t["revisions"].add(row["revision"] or "main")
        if row["n_parameters"]:
            t["n_parameters"].add(row["n_parameters"])
        if isinstance(row["recipe"], dict) and row["recipe"] not in t["recipes"]:
            t["recipes"].append(row["recipe"])
    for _, record in scan.records:
        if record["target"]["id"] in data.targets:
            data.targets[record["target"]["id"]]["records"].append(record["target"])
    for s in data.scorers.values():
        s["versions"], s["code_hashes"] = sorted(s["versions"]), sorted(s["code_hashes"])
        s["settings"] = sorted(s["settings"])
        s["rows"].sort(key=lambda r: (r["track"], r["split"], r["target"], r["setting"]))
    for t in data.targets.values():
        t["revisions"] = sorted(t["revisions"])
        t["n_parameters"] = sorted(t["n_parameters"])
        t["rows"].sort(key=lambda r: (r["split"], -r["auc_full"]))

    # tracks: per track, public and private splits apart, each with its own tables and figure
    by_track = defaultdict(list)
    for row in data.rows:
        by_track[row["track"]].append(row)
    for name in sorted(by_track, key=lambda n: (TRACK_ORDER.get(n, 9), n)):
        groups = []
        for private in (False, True):
            rows = [r for r in by_track[name] if r["private"] == private]
            if not rows:
                continue
            prefix = page_slug(name) + ("-private" if private else "")
            splits = sorted((s for s in data.splits.values() if s["track"] == name and s["private"] == private),
                            key=lambda s: s["id"])
            means = _means(prefix, [r for r in rows if not r["subset"]])  # over whole splits only
            groups.append({
                "private": private, "prefix": prefix, "splits": splits,
                "pinned": sorted((r for r in rows if r["blind"]), key=lambda r: (r["split"], -r["auc_full"])),
                "rows": sorted((r for r in rows if not r["blind"]),
                               key=lambda r: (r["split"], r["target"], r["rank"] or 1e9, -r["auc_full"])),
                "means": means, "matrix": scorer_target_matrix(prefix, means), "panels": _panels(splits),
            })
        data.tracks.append({"name": name, "slug": page_slug(name), "control": name in CONTROL_TRACKS,
                            "groups": groups})
    return data
