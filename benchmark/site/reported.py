"""Reported results on the site: the numbers papers published, beside the numbers reproduced.

Read from the results folder's ``_reported/*.yaml`` through ``results.reported`` (pydantic models
of YAML; it imports no pipeline stage) and paired with the records the site shows. Every
reported value becomes one *reported row* with one status:

- ``reproduced``: a shown record of the same split, target model and revision, scorer setting
  (and reference model and calibration subset) holds the metric, and the reported value lies
  inside its 95% interval (or the record has no interval);
- ``outside interval``: such a record exists and the reported value lies outside its interval;
- ``analogue``: the paper's attack is not membench's, and the record is of the membench scorer
  that measures the same signal with another definition (compared, never called a reproduction);
- ``reported only``: no shown record can be compared (the reason says why: no record in this
  folder, no membench target, split or scorer, a budget the records do not hold).

Comparisons use the published values, as everything on the site: the reproduced value and its
interval rounded to the precision the interval supports (``results.published``). On a private
split that is all that leaves the evaluator (``results.disclose``), so the pairing reveals
nothing more of a private record than its row already shows; on a public split the same
rounding keeps the comparison consistent with the interval printed beside it.

Where it is shown: a reported column beside the reproduced one in every results table whose
rows have a reported value (each value linking its row on its paper's page); reported-only rows
on the page of their split, target and scorer setting where such a page exists, marked so and
kept in a body of their own after the reproduced rows (never ranked or sorted among them); and
a page per paper listing every row of its file with its status, where it was read and the
reproduction preset (``benchmark/grid/presets.yaml``, read as YAML) that would make it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import yaml

from ..results.naming import base_name
from ..results.published import public_view
from ..results.reported import NO_MODEL, ReportedRow, load_dir, pair, reported_dir
from . import precision
from .columns import RESULT_FIELDS
from .labels import _slug as page_slug  # model.page_slug's rule (model imports this module)
from .tables import col

PRESETS_FILE = Path(__file__).resolve().parent.parent / "grid" / "presets.yaml"
REPRODUCED, OUTSIDE, ANALOGUE, REPORTED_ONLY = "reproduced", "outside interval", "analogue", "reported only"
STATUSES = (REPRODUCED, OUTSIDE, ANALOGUE, REPORTED_ONLY)
MAX_DECIMALS = 4

REPORTED = col("reported_text", "reported", sort="reported_sort",
               help="what papers reported for the same split, target and revision, scorer setting and metric (as a "
               "fraction), each linking its row on the paper's page; the difference is reproduced minus reported "
               "and 'within' says the reported value lies inside the reproduced 95% interval, both on the published "
               "(rounded) values")
REPORTED_FIELDS = {"reported": "reported_text", "reported_source": "reported_source", "row_kind": "row_kind"}


# --------------------------------------------------------------------------------------------
# Presets: which grid makes a reported row (read as YAML: the grid package imports the targets)


def read_presets(path: Path = PRESETS_FILE) -> list[dict]:
    """The reproduction presets as the site names them: name, description, the reported tables
    they reproduce, their targets, splits, scorer names and reference, and the differences they
    state. Read tolerantly (``benchmark.grid.presets`` validates the file); none when absent."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    out = []
    for name, p in sorted((doc.get("presets") or {}).items()):
        if not isinstance(p, dict):
            continue
        out.append({
            "name": str(name), "description": " ".join(str(p.get("description") or "").split()),
            "reproduces": {(str(t.get("paper")), str(t.get("table"))) for t in p.get("reproduces") or []
                           if isinstance(t, dict)},
            "targets": {str(t) for t in p.get("targets") or []}, "splits": {str(s) for s in p.get("splits") or []},
            "scorers": {str(s).partition(":")[0].strip() for s in p.get("scorers") or []},
            "reference": p.get("reference"), "differences": [str(d) for d in p.get("differences") or []],
            "plan": f"membench grid --preset {name} --plan", "run": f"membench grid --preset {name}",
        })
    return out


def presets_for(row: ReportedRow, presets: list[dict]) -> list[str]:
    """Presets that declare the row's table and run its target, split and scorer (and its
    reference model, when it has one)."""
    if not row.reproducible:
        return []
    return [p["name"] for p in presets
            if (row.paper.key, row.table) in p["reproduces"] and row.split.membench in p["splits"]
            and (row.target.membench == NO_MODEL or row.target.membench in p["targets"])
            and base_name(row.attack.label) in p["scorers"]
            and (row.attack.reference_membench is None or row.attack.reference_membench == p["reference"])]


# --------------------------------------------------------------------------------------------
# Reported rows


def printed_decimals(row: ReportedRow) -> int:
    """Decimals of the printed value once it is a fraction (61.4% -> 3), at most 4."""
    text = row.printed.strip().rstrip("%")
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    return max(0, min(MAX_DECIMALS, decimals + (2 if row.scale == "percent" else 0)))


def status_of(entry: dict) -> str:
    """The status of one entry of ``results.reported.pair``."""
    if entry["status"] != "reproduced":
        return REPORTED_ONLY
    if entry["comparison"] == "analogue":
        return ANALOGUE
    return OUTSIDE if entry["within_interval"] is False else REPRODUCED


def _published(row: dict) -> dict:
    """A shown row's record with its metrics as published (a private one already is)."""
    return row["record"] if row["private"] else public_view(row["record"])


def _target_text(row: ReportedRow) -> str:
    t = row.target
    if t.membench == NO_MODEL:
        return "none"
    if t.membench:
        return t.membench + (f"@{t.membench_revision}" if t.membench_revision not in (None, "", "main") else "")
    return f"{t.name} (not a membench target)"


def _protocol(row: ReportedRow) -> list[str]:
    """What the source states about how it measured, one item per field or note."""
    parts = []
    for key, value in row.protocol.model_dump(exclude_none=True, exclude_defaults=True).items():
        parts += list(value) if key == "notes" else [f"{key.replace('_', ' ')}: {value}"]
    return parts


def _reported_row(row: ReportedRow, presets: list[str], pages: dict) -> dict:
    """One reported value as a site row (reported only until a comparison fills it in)."""
    d = printed_decimals(row)
    target_id = row.target.membench if row.target.membench not in (None, NO_MODEL) else None
    shown = pages["scorers"].get(row.attack.label) if row.attack.scorer else None
    out = {f"{key}_why": REPORTED_ONLY for key in RESULT_FIELDS.values()}  # in a results table's downloads
    return out | {
        "id": row.id, "paper": row.paper.key, "paper_slug": page_slug(row.paper.key), "table": row.table,
        "table_title": row.table_title, "column": row.column, "subset": row.subset,
        "source_target": row.target.name + (f" ({row.target.revision})" if row.target.revision else ""),
        "source_split": row.split.name, "source_attack": row.attack.name,
        "target": _target_text(row), "target_id": target_id, "target_slug": pages["targets"].get(target_id),
        "split": row.split.membench or row.split.external, "split_id": row.split.membench,
        "split_slug": pages["splits"].get(row.split.membench), "split_note": row.split.note,
        "scorer": row.attack.label, "attack": row.attack.display, "attack_note": row.attack.note,
        "scorer_label": shown[0] if shown else (row.attack.label or row.attack.display),
        "scorer_slug": shown[1] if shown else None,
        "reference": row.attack.reference_membench or row.attack.reference,
        "metric": row.metric.label, "printed": row.printed, "scale": row.scale, "printed_decimals": d,
        "reported": row.value, "reported_text": precision.text(row.value, d), "reported_sort": row.value,
        "value_text": precision.text(row.value, d),
        "source": row.source.address, "where": row.source.where, "protocol_items": _protocol(row),
        "protocol": " | ".join(_protocol(row)) or None,
        "protocol_why": "none stated", "presets": presets, "presets_text": ", ".join(presets) or None,
        "presets_text_why": "no preset runs it",
        "as_printed": f"{row.attack.name} on {row.target.name}, {row.split.name}",
        "note": f"reported by {row.paper.key}: {row.attack.name} on {row.target.name}, {row.split.name}",
        "reported_only": True, "row_kind": REPORTED_ONLY, "status": REPORTED_ONLY, "status_text": REPORTED_ONLY,
        "status_class": page_slug(REPORTED_ONLY), "reason": None, "reproduced": None, "reproduced_text": None,
        "reproduced_why": REPORTED_ONLY, "ci_lo": None, "ci_lo_why": REPORTED_ONLY, "ci_hi": None,
        "ci_hi_why": REPORTED_ONLY, "difference": None, "difference_text": None, "difference_why": REPORTED_ONLY,
        "within": None, "within_text": None, "within_why": REPORTED_ONLY, "row_href": None,
        "anchor": "", "paper_table_id": "",
    }


def _compare(rrow: dict, entry: dict, decimals: int) -> None:
    """Fill a reported row's comparison from an entry of ``pair`` against one published record
    (``decimals``: those of the record's shown row)."""
    status = status_of(entry)
    rrow.update(status=status, status_text=status, status_class=page_slug(status), reason=entry["reason"])
    if entry["status"] != "reproduced":
        return
    d = max(decimals, rrow["printed_decimals"])
    ci = entry["ci95"]
    rrow.update(
        reported_only=False, row_kind="membench", reproduced=entry["reproduced"],
        reproduced_text=precision.text(entry["reproduced"], decimals)
        + (" " + precision.interval_text(ci[0], ci[1], decimals) if ci else ""),
        ci_lo=ci[0] if ci else None, ci_lo_why="no interval", ci_hi=ci[1] if ci else None, ci_hi_why="no interval",
        difference=round(entry["difference"], d), difference_text=precision.text(entry["difference"], d, sign=True),
        within=entry["within_interval"], within_why="no interval",
        within_text={True: "within", False: "outside", None: "no interval"}[entry["within_interval"]],
    )


def _anchors(rrows: list[dict]) -> None:
    seen: dict[str, int] = defaultdict(int)
    for r in rrows:
        base = "p-" + page_slug(f"{r['paper']}--{r['table']}--{r['source_target']}--{r['source_split']}--{r['column']}")
        seen[base] += 1
        r["anchor"] = base if seen[base] == 1 else f"{base}-{seen[base]}"


def _row_href(row: dict) -> str:
    """The permalink of a shown row in its split page's results table (site-relative)."""
    table = f"split-{row['split_slug']}" + (f"-rest-{page_slug(row['subset'])}" if row["subset"] else "")
    return f"split/{row['split_slug']}.html#{table}--{row['anchor']}"


def _summary(entries: list[dict]) -> str:
    """The reported column as text (LaTeX, Markdown, CSV): each value, its paper and comparison."""
    parts = []
    for e in entries:
        metric = "" if e["metric"] == "AUC" else f" {e['metric']}"
        if e["reported_only"]:
            how = REPORTED_ONLY
        else:
            how = f"{e['difference_text']}, {e['within_text']}" + (", analogue" if e["status"] == ANALOGUE else "")
        parts.append(f"{e['reported_text']}{metric} ({e['paper']}: {how})")
    return "; ".join(parts)


def _sources(entries: list[dict]) -> str:
    """Where each reported value was read (downloads): the address, and where in it."""
    return "; ".join(f"{e['paper']}: {e['source']} ({e['where']})" for e in entries)


def _entry_order(e: dict) -> tuple:
    return (e["metric"] != "AUC", e["metric"], e["paper"], e["paper_table_id"], e["anchor"])


def _fixed_order(r: dict) -> tuple:
    """The order of reported-only rows: those on membench targets first, then by target, scorer,
    metric and paper (never by their values)."""
    return (r["target_id"] is None and r["target"] != "none", r["target"], r["scorer_label"], r["metric"], r["paper"],
            r["paper_table_id"], r["anchor"])


def _papers(rows: list[ReportedRow], rrows: list[dict], presets: list[dict]) -> list[dict]:
    """One page per paper: its tables (in file order) with their rows, sources and presets."""
    papers: dict[str, dict] = {}
    for row, rr in zip(rows, rrows):
        p = papers.setdefault(row.paper.key, {
            "key": row.paper.key, "slug": rr["paper_slug"], "paper_slug": rr["paper_slug"], "anchor": rr["paper_slug"],
            "reference": " ".join(row.paper.reference.split()),
            "arxiv": row.paper.arxiv, "url": row.paper.url, "tables": {}, "rows": []})
        t = p["tables"].setdefault(row.table, {"id": row.table, "title": row.table_title, "rows": [],
                                               "sources": [], "protocols": [], "metrics": []})
        t["rows"].append(rr)
        p["rows"].append(rr)
        for key, value in (("sources", rr["source"]), ("protocols", rr["protocol_items"]), ("metrics", rr["metric"])):
            if value and value not in t[key]:
                t[key].append(value)
    for p in papers.values():
        p["tables"] = list(p["tables"].values())
        for i, t in enumerate(p["tables"], 1):
            t["table_id"] = f"paper-{p['slug']}-{i}"
            for rr in t["rows"]:
                rr["paper_table_id"] = t["table_id"]
            t["presets"] = [pr for pr in presets if (p["key"], t["id"]) in pr["reproduces"]]
    return [papers[k] for k in sorted(papers)]


def _count(papers: list[dict]) -> dict:
    total = dict.fromkeys(STATUSES, 0)
    for p in papers:
        p["counts"] = dict.fromkeys(STATUSES, 0)
        for rr in p["rows"]:
            p["counts"][rr["status"]] += 1
            total[rr["status"]] += 1
        p.update({"n_" + page_slug(s).replace("-", "_"): n for s, n in p["counts"].items()})
        p["n"] = len(p["rows"])
        for t in p["tables"]:
            t["compared"] = [r for r in t["rows"] if not r["reported_only"]]
            t["only"] = [r for r in t["rows"] if r["reported_only"]]
    return total


def attach_reported(data, results_dir: Path):
    """Read the folder's reported files, pair them with the rows ``data`` shows, and give the
    pages what they need: ``data.reported`` (papers with their tables and rows, problems,
    counts), ``reported`` on every shown row (the values reported beside it), and
    ``reported_only`` on the split, target and scorer-setting pages those values name.
    Returns ``data``."""
    results_dir = Path(results_dir)
    rows, problems = load_dir(results_dir)
    problems = [p.replace(str(reported_dir(results_dir)), "_reported") for p in problems]  # no host path on a page
    presets = read_presets()
    scorer_pages: dict[str, tuple] = {}
    for r in sorted(data.rows, key=lambda r: (r["created_at"], r["anchor"]), reverse=True):  # the newest names it
        page = data.scorers.get(r.get("scorer_slug"))
        if r["unit"] == "samples" and page is not None:
            scorer_pages.setdefault(r["scorer"], (page["name"], page["slug"]))
    pages = {"scorers": scorer_pages, "targets": {t["id"]: t["slug"] for t in data.targets.values()},
             "splits": {s["id"]: s["slug"] for s in data.splits.values()}}
    rrows = [_reported_row(r, presets_for(r, presets), pages) for r in rows]
    _anchors(rrows)
    papers = _papers(rows, rrows, presets)

    # each shown row against the reported rows of its split and target
    by_place: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.reproducible:
            by_place[(r.split.membench, r.target.membench)].append(i)
    matches: dict[int, list[tuple[dict, dict]]] = defaultdict(list)
    seen: dict[int, list[dict]] = defaultdict(list)  # published records of the place, for the reason
    for shown in data.rows:
        found = by_place.get((shown["split"], shown["target_id"])) if shown["unit"] == "samples" else None
        if not found:
            continue
        record = _published(shown)
        for i, entry in zip(found, pair([rows[i] for i in found], [record])):
            seen[i].append(record)
            if entry["status"] == "reproduced":
                matches[i].append((shown, entry))
    for i, rr in enumerate(rrows):
        if i not in matches:
            (entry,) = pair([rows[i]], seen.get(i, []))
            _compare(rr, entry, 0)
            continue
        newest, entry = max(matches[i], key=lambda m: (m[0]["created_at"], m[0]["anchor"]))  # as `pair` picks
        _compare(rr, entry, newest["decimals"])
        rr["row_href"] = _row_href(newest)
        for shown, e in matches[i]:  # every shown row of that setting carries the value beside it
            if shown is newest:
                shown.setdefault("reported", []).append(rr)
            else:
                older = dict(rr, row_href=_row_href(shown))
                _compare(older, e, shown["decimals"])
                shown.setdefault("reported", []).append(older)
    for shown in data.rows:
        entries = sorted(shown.get("reported") or [], key=_entry_order)
        shown.update(reported=entries, reported_text=_summary(entries) if entries else None,
                     reported_text_why="no reported value", reported_sort=entries[0]["reported"] if entries else None,
                     reported_source=_sources(entries) if entries else None, reported_source_why="no reported value",
                     row_kind="membench")
    for rr in rrows:
        if rr["reported_only"]:
            rr["reported_source"] = _sources([rr])
    for rr in rrows:
        rr["reason_text"] = "; ".join(x for x in (rr["reason"], f"preset {rr['presets_text']}" if rr["presets"] else None)
                                      if x) or None
    data.reported = {"papers": papers, "problems": problems, "rows": rrows, "counts": _count(papers),
                     "presets": presets}
    _place_reported_only(data, rrows)
    return data


def _place_reported_only(data, rrows: list[dict]) -> None:
    """Reported-only rows onto the pages of their split (the table of their calibration subset's
    rest when the split has one), target and scorer setting, in a fixed order."""
    for split in data.splits.values():
        split["reported_only"] = []
        for rest in split["rests"]:
            rest["reported_only"] = []
    for t in data.targets.values():
        t["reported_only"] = []
    for page in data.scorers.values():
        page["reported_only"] = []
    for rr in sorted((r for r in rrows if r["reported_only"]), key=_fixed_order):
        split = data.splits.get(rr["split_id"])
        if split is not None:
            rest = next((x for x in split["rests"] if x["name"] == rr["subset"]), None) if rr["subset"] else None
            (rest or split)["reported_only"].append(rr)
        if rr["target_id"] in data.targets:
            data.targets[rr["target_id"]]["reported_only"].append(rr)
        if rr["scorer_slug"] in data.scorers:
            data.scorers[rr["scorer_slug"]]["reported_only"].append(rr)


def with_reported(columns: list, rows, reported_only=()) -> list:
    """``columns`` with the reported column after the AUC column, when a row has a reported
    value or the table has reported-only rows; else unchanged."""
    if not reported_only and not any(r.get("reported") for r in rows):
        return columns
    at = next((i + 1 for i, c in enumerate(columns) if c["sort"] == "auc"), len(columns))
    return columns[:at] + [REPORTED] + columns[at:]


def reported_fields(fields: dict, columns: list) -> dict:
    """Download fields of a results table: the reported ones too when the table shows them."""
    return {**fields, **REPORTED_FIELDS} if REPORTED in columns else fields


PAPER_COLUMNS = [
    col("as_printed", "as printed", help="the attack, model and data as the source names them"),
    col("target", "target", link="target", help="the membench target and revision it maps to"),
    col("split", "split", link="split", help="the suite split it maps to, or an external id"),
    col("scorer_label", "attack", link="scorer", help="the membench scorer setting compared (an analogue for an "
        "attack membench does not implement)"),
    col("metric", "metric"),
    col("value_text", "reported", sort="reported", num=True, help="the printed value, as a fraction"),
    col("reproduced_text", "reproduced [95% CI]", sort="reproduced", num=True, href="row_href",
        help="the published (rounded) value of the newest shown record of the same setting"),
    col("difference_text", "difference", sort="difference", num=True, help="reproduced minus reported"),
    col("status_text", "status", sort="status", badge="status_class",
        help="reproduced: inside the reproduced 95% interval; outside interval; analogue: compared with a membench "
        "scorer of another definition; reported only: nothing here to compare with"),
    col("reason_text", "why, and the preset that makes it",
        help="why a value is reported only, and the reproduction preset (benchmark/grid/presets.yaml) that runs its "
        "target, split and scorer: `membench grid --preset NAME --plan` prints its jobs and cost"),
    col("where", "read from", href="source", help="the source, and where in it the value was read"),
]
PAPER_FIELDS = {
    "paper": "paper", "table": "table", "column": "column", "target_as_reported": "source_target",
    "split_as_reported": "source_split", "attack_as_reported": "source_attack", "target": "target",
    "split": "split", "scorer": "scorer", "attack": "attack", "reference_model": "reference", "metric": "metric",
    "printed": "printed", "scale": "scale", "reported": "reported", "reproduced": "reproduced",
    "reproduced_ci95_lo": "ci_lo", "reproduced_ci95_hi": "ci_hi", "difference": "difference",
    "within_interval": "within", "status": "status", "reason": "reason", "evaluated_on": "subset",
    "protocol": "protocol", "preset": "presets_text", "source": "source", "where": "where",
}
PAPERS_COLUMNS = [
    col("key", "paper", link="paper"),
    col("reference", "reference"),
    col("n", "values", num=True),
    col("n_reproduced", "reproduced", num=True),
    col("n_outside_interval", "outside interval", num=True),
    col("n_analogue", "analogue", num=True),
    col("n_reported_only", "reported only", num=True),
]
PAPERS_FIELDS = {"paper": "key", "reference": "reference", "arxiv": "arxiv", "url": "url", "values": "n",
                 "reproduced": "n_reproduced", "outside_interval": "n_outside_interval", "analogue": "n_analogue",
                 "reported_only": "n_reported_only"}


__all__ = ["ANALOGUE", "OUTSIDE", "PAPERS_COLUMNS", "PAPERS_FIELDS", "PAPER_COLUMNS", "PAPER_FIELDS", "PRESETS_FILE",
           "REPORTED", "REPORTED_FIELDS", "REPORTED_ONLY", "REPRODUCED", "STATUSES", "attach_reported",
           "presets_for", "read_presets", "reported_fields", "with_reported"]
