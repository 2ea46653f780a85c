"""What the site shows, computed from the published records of a results folder (no rendering).

A pure function of the results folder: the records the publication gate stamped (``membench
results validate``), each read through ``results.disclose`` (what may leave about it: on a
private split only rounded aggregates, and only of the records the Ladder shows:
``published_records``), and the diagnostics JSON the folder holds
(``_diagnostics/``, through ``results.disclose_diagnostics``). Nothing here reads labels,
imports the suite, the targets, the attacks or the diagnostics, or looks at MEMBENCH_HOME, so
the same folder gives the same pages anywhere. The server's API serves slices of this same
``SiteData``.

Rows keep a sortable value apart from the text they display (as HELM does); every value, shown
or sorted by, is the published one: rounded to the precision its interval supports
(``precision``). Tables sort by those values and break ties by the row's label, target and
split, so two rows shown equal stand in an order that no label decides. Tracks are whatever
the records say (``split.track``); within a track, results on private splits (``split.private``)
are kept apart from those on public splits.

Rank groups: on one (split, target), scorers sorted by published AUC; the first opens group 1
and every scorer whose published 95% interval overlaps the group leader's joins it; the first
that does not opens the next group and leads it. Blind baselines are never ranked; they are
pinned above the ranked rows. Rank groups and "AUC − blind" mean nothing for a model-free
scorer or on a control split: there they are "not applicable", and so is "vs blind".

A record on the evaluated rest of a calibration subset (``evaluation_subset``) belongs to a table
of its own: on the split page one table per subset, with its own pinned blind baselines, "vs
blind" and rank groups; elsewhere its "evaluated on" cell names the subset, and means over
splits use whole-split rows only.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..home import diagnostics_file
from ..results import Rejected, ResultsStore, disclose_diagnostics
from ..results.published import disclose_rejected, published_records
from . import precision
from .labels import label_rows, setting_pages, unique_slugs
from .reported import attach_reported

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
    if metrics.get("tpr_pending"):  # a private split's open round: its TPRs come with the final figures
        return None, "n/a", str(metrics["tpr_pending"])
    entry = (metrics.get("tpr_at_fpr") or {}).get(budget) or {}
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
    scorers: dict = field(default_factory=dict)  # one page per scorer setting, by page slug
    methods: list[dict] = field(default_factory=list)  # the catalog: methods, their classes and settings
    targets: dict = field(default_factory=dict)
    tracks: list[dict] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)  # as pages may name them (``disclose_rejected``)
    refused: list[Rejected] = field(default_factory=list)  # with their full paths, for the maintainer's command
    last_update: str | None = None
    suite_versions: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)  # the published records (``results.disclose``)
    reported: dict = field(default_factory=dict)  # what papers reported, paired with the rows (``site.reported``)


def evaluated_on(record: dict) -> dict:
    """The calibration subset whose evaluated rest a record is on (None: the whole split)."""
    sub = record.get("evaluation_subset")
    if not isinstance(sub, dict):
        return {"subset": None, "subset_n": None, "subset_n_calibration": None, "evaluated_on": "whole split"}
    return {"subset": sub.get("name"), "subset_n": sub.get("n"), "subset_n_calibration": sub.get("n_calibration"),
            "evaluated_on": f"rest of {sub.get('name')} ({sub.get('n')} texts)"}


def make_row(path: Path, record: dict) -> dict:
    """One table row from one published record (``results.disclose``)."""
    m, split, target, scorer = record["metrics"], record["split"], record["target"], record["scorer"]
    display, stamp = record["display"], record.get("gate") or {}
    private = split.get("private") is True
    lo, hi = m["auc_ci95"]
    d = m["shown_decimals"] if private and isinstance(m.get("shown_decimals"), int) else precision.decimals_for(lo, hi)
    blind = scorer["kind"] == "blind_baseline"
    model_free = is_model_free(record)
    per_sample = record.get("per_sample") if not private else None
    row = {
        "scores_path": str(Path(path).parent / per_sample["file"]) if per_sample else None,
        "scores_sha256": per_sample["sha256"] if per_sample else None,
        "split": split["id"],
        "split_slug": page_slug(split["id"]),
        "track": split["track"],
        "family": split["family"],
        "private": private,
        "control": split["track"] in CONTROL_TRACKS,
        "scorer": scorer["name"],
        "scorer_id": display["scorer"],
        "display": display,
        "title": display["title"],
        "method": display["method"],
        "method_title": display["method_title"],
        "params": scorer.get("params") if isinstance(scorer.get("params"), dict) else {},
        "scorer_version": scorer["version"],
        "kind": scorer["kind"],
        "requires": list(scorer.get("requires") or []),
        "model_free": model_free,
        "code_sha256": scorer["code_sha256"],
        "target": target_label(target),
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
        "roc": m.get("roc") if not private else None,  # never on a private split (``results.disclose``)
        "views": record.get("views") if not private else None,
        "created_at": record["provenance"]["created_at"],
        "submission": record.get("submission"),
        "recipe": (record.get("provenance") or {}).get("recipe"),
        "n_parameters": target.get("n_parameters") if isinstance(target.get("n_parameters"), int) else None,
        "nominal_size": stamp.get("nominal_size"),
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
        "record": record,
        **evaluated_on(record),
    }
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


def order(row: dict) -> tuple:
    """A fixed order among rows that no label decides: names, then target, split and subset."""
    return (row.get("scorer_label") or "", row.get("target") or "", row.get("split") or "", row.get("subset") or "",
            row.get("anchor") or "")


def by_auc(row: dict) -> tuple:
    """Published AUC, highest first; ties in the fixed order (``order``)."""
    return (-(row["auc"] if row["auc"] is not None else -1),) + order(row)


def rank_groups(rows: list[dict]) -> None:
    """Assign ``rank`` to the ranked rows of one (split, target); see the module docstring."""
    ranked = sorted((r for r in rows if not r["blind"] and not r.get("model_free") and not r.get("control")),
                    key=by_auc)
    group, leader = 0, None
    for row in ranked:
        if leader is None or row["auc_hi"] < leader["auc_lo"]:
            group, leader = group + 1, row
        row["rank"] = group


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


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
        row["best"] = max(a for a in row.pop("aucs") if a is not None)
    return {"targets": targets, "rows": sorted(rows.values(), key=lambda r: (-r["best"], r["scorer_label"]))}


def _means(prefix: str, rows: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for row in rows:
        if not row["blind"]:
            groups[(row["scorer_label"], row["target"])].append(row)
    means = []
    for (label, target), rs in groups.items():
        d = min(r["decimals"] for r in rs)
        auc, n = _mean([r["auc"] for r in rs])
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
    means.sort(key=lambda r: (-(r["mean_auc"] or 0), r["scorer_label"], r["target"]))
    return means


def _panels(splits: list[dict]) -> list[dict]:
    """One overview panel per split: each scorer's AUC on the split's primary target."""
    panels = []
    for split in splits:
        target = primary_target(split["rows"])
        rows = sorted((r for r in split["rows"] if r["target"] == target), key=by_auc)
        rows += sorted((r for r in split["rows"] if r["model_free"] and r["target_id"] == "none"), key=by_auc)
        if not rows:
            continue
        panels.append({"split": split, "target": target, "rows": rows})
    return panels


def _blind_summary(split: dict) -> None:
    """The split's best blind-baseline AUC as published: the diagnostics' (rounded to its
    interval), else the best blind-baseline record's."""
    diag = split["diagnostics"] or {}
    best = diag.get("blind_auc") if _num(diag.get("blind_auc")) else None
    ci = diag.get("blind_auc_ci95")
    ci = ci if isinstance(ci, list) and len(ci) == 2 and all(map(_num, ci)) else None
    if best is not None:
        d = precision.decimals_for(*ci) if ci else precision.DEGENERATE_DECIMALS
        best, ci = precision.rounded(best, d), ([precision.rounded(v, d) for v in ci] if ci else None)
    elif split["blind_rows"]:
        top = sorted(split["blind_rows"], key=by_auc)[0]
        best, ci, d = top["auc"], [top["auc_lo"], top["auc_hi"]], top["decimals"]
    else:
        d = precision.DEGENERATE_DECIMALS
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
        excess = row["auc"] - best
        row["excess"] = precision.rounded(excess, row["decimals"])
        row["excess_text"] = precision.text(excess, row["decimals"], sign=True)
        row["excess_why"] = None
        row["vs_blind"] = "above" if row["auc_lo"] > best else "not above"
        row["vs_blind_text"] = f"{row['vs_blind']} {row['excess_text']}"
        row["vs_blind_why"] = None
    for row in split["rows"]:
        if row["excess_why"] == NO_BLIND:
            row["vs_blind_text"] = "–"


def read_diagnostics(results_dir: Path, split_id: str, content_hash: str | None, private: bool) -> dict | None:
    """A split's diagnostics as published: ``<results>/_diagnostics/<split>.json`` (never anything
    under MEMBENCH_HOME), passed over when made on another version of the split; an unreadable
    one gives ``{"error": ...}``."""
    path = diagnostics_file(split_id, results_dir)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {"error": f"diagnostics file {path.name} is not valid JSON"}
    if not isinstance(data, dict):
        return None
    subject = data.get("subject") if isinstance(data.get("subject"), dict) else {}
    if content_hash and subject.get("content_hash") and subject["content_hash"] != content_hash:
        return None
    return disclose_diagnostics(data, private)


def _published_rejected(scan_rejected, root: Path) -> list[Rejected]:
    """Refused files as a page may name them: relative, key hash masked, no host path."""
    return [Rejected(Path(disclose_rejected(Path(r.path), root)), r.field,
                     r.message.replace(str(root), "<results folder>")) for r in scan_rejected]


def collect_data(results_dir: Path) -> SiteData:
    """Everything the pages show: the published records' rows, splits, targets, scorer pages
    and tracks, and the values papers reported beside them (``site.reported``)."""
    return attach_reported(_collect_records(Path(results_dir)), results_dir)


def _collect_records(results_dir: Path) -> SiteData:
    scan = ResultsStore(results_dir, require_gate=True).scan()
    data = SiteData(rejected=_published_rejected(scan.rejected, results_dir), refused=list(scan.rejected))
    hashes = {}
    full = {str(path): record for path, record in scan.records}
    for path, published in published_records(scan.records):  # a record the Ladder withholds is not among them
        hashes.setdefault(published["split"]["id"], full[str(path)]["split"]["content_hash"])
        data.records.append(published)
        data.rows.append(make_row(path, published))
    if not data.rows:
        return data
    label_rows(data.rows)
    data.scorers, data.methods = setting_pages(data.rows)
    unique_slugs(data.rows)
    data.last_update = max(r["created_at"] for r in data.rows)
    data.suite_versions = sorted({v for r in data.records if (v := (r.get("gate") or {}).get("suite_version"))})
    measured = {}
    for row in data.rows:
        if row["n_parameters"]:
            measured.setdefault(row["target_id"], row["n_parameters"])
    for row in data.rows:
        if row["size"] is None and row["target_id"] != "none":
            if row["target_id"] in measured:
                row["size"], row["size_measured"] = float(measured[row["target_id"]]), True
            else:
                row["size"] = parse_size(row["nominal_size"])

    # splits: blind baselines, diagnostics, excess over the best blind baseline, rank groups
    for row in data.rows:
        if row["split"] not in data.splits:
            data.splits[row["split"]] = {
                "id": row["split"], "slug": row["split_slug"], "track": row["track"], "family": row["family"],
                "private": row["private"], "control": row["control"],
                "content_hash": None if row["private"] else hashes[row["split"]],
                "rows": [], "blind_rows": [], "rests": {},
                "diagnostics": read_diagnostics(results_dir, row["split"], hashes[row["split"]], row["private"]),
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
            table["rows"].sort(key=lambda r: (r["target"], r["rank"] or 1e9) + by_auc(r))
            table["blind_rows"].sort(key=by_auc)
        split["primary_target"] = primary_target(split["rows"])

    # targets
    for row in data.rows:
        if row["target_slug"] is None:
            continue
        t = data.targets.setdefault(row["target_id"], {
            "id": row["target_id"], "slug": row["target_slug"], "rows": [], "revisions": set(),
            "n_parameters": set(), "nominal": row["nominal_size"], "records": [], "recipes": [],
        })
        t["rows"].append(row)
        t["revisions"].add(row["revision"] or "main")
        t["records"].append(row["record"]["target"])
        if row["n_parameters"]:
            t["n_parameters"].add(row["n_parameters"])
        if isinstance(row["recipe"], dict) and row["recipe"] not in t["recipes"]:
            t["recipes"].append(row["recipe"])
    for t in data.targets.values():
        t["revisions"] = sorted(t["revisions"])
        t["n_parameters"] = sorted(t["n_parameters"])
        t["rows"].sort(key=lambda r: (r["split"],) + by_auc(r))
    for page in data.scorers.values():
        page["rows"].sort(key=lambda r: (r["track"], r["split"], r["target"], r["scorer_label"], r["subset"] or ""))

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
                "pinned": sorted((r for r in rows if r["blind"]), key=lambda r: (r["split"],) + by_auc(r)),
                "rows": sorted((r for r in rows if not r["blind"]),
                               key=lambda r: (r["split"], r["target"], r["rank"] or 1e9) + by_auc(r)),
                "means": means, "matrix": scorer_target_matrix(prefix, means), "panels": _panels(splits),
            })
        data.tracks.append({"name": name, "slug": page_slug(name), "control": name in CONTROL_TRACKS,
                            "groups": groups})
    return data
