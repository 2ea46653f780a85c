"""The static leaderboard: validated result files in, plain HTML/CSS/SVG/CSV/JSON out.

Reads only JSON (and parquet hashes) through the results store; never imports torch or model
code. Every piece of text from a result file reaches HTML through jinja2 autoescaping (or
markupsafe in the SVG plots), so a scorer called ``<script>`` renders as text.

Output layout (``leaderboard_site/build/`` by default)::

    index.html                 overview: per track, scorer x target tables and means over splits
    split/<slug>.html          verdict and diagnostics, controls, data card, then the table
    scorer/<slug>.html         ROC (linear, log-log), AUC vs size / checkpoint, shift, metadata
    target/<slug>.html         every result on one target (and, if fine-tuned, its recipe)
    finetune.html              the fine-tuned track by recipe family; generated-data before/after
    data/<table id>.csv|.json  a download of every table
    schema/result.schema.json  the published result schema
    static/                    style.css, leaderboard.js (sorting and filtering, no framework)
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from .. import __version__
from ..hashing import sha256_file
from ..home import BUILD_DIR, REPO_ROOT, SITE_ROOT
from ..results import SCHEMA_FILE, Rejected
from . import finetune as ftsite
from .model import SiteData, collect_data, fmt, page_slug
from .plots import MAX_SERIES, line_svg, roc_svg

log = logging.getLogger(__name__)

TEMPLATES = SITE_ROOT / "templates"
STATIC = SITE_ROOT / "static"
CITATIONS = SITE_ROOT / "citations.yaml"
CARDS_DIR = REPO_ROOT / "data_cards"
SPLITS_REGISTRY = REPO_ROOT / "benchmark" / "suite" / "splits.yaml"
DEFAULT_OUT = BUILD_DIR
GENERATED = ("index.html", "split", "scorer", "target", "data", "schema", "static")


def _col(key, label, *, sort=None, num=False, link=None, help=None):
    return {"key": key, "label": label, "sort": sort or key, "num": num, "link": link, "help": help}


RESULT_COLUMNS = [
    _col("scorer", "scorer", link="scorer"),
    _col("target", "target", link="target"),
    _col("split", "split", link="split"),
    _col("auc_text", "AUC", sort="auc", num=True),
    _col("ci_text", "95% CI", sort="auc_lo", num=True, help="stratified bootstrap, 1,000 resamples"),
    _col("tpr1_text", "TPR@1%FPR", sort="tpr1", num=True, help="largest TPR among ROC points with FPR <= 1%"),
    _col("tpr01_text", "TPR@0.1%FPR", sort="tpr01", num=True, help="largest TPR among ROC points with FPR <= 0.1%"),
    _col("rank", "rank group", num=True, help="scorers whose 95% intervals overlap the group leader's share a group"),
    _col("excess_text", "AUC − blind", sort="excess", num=True, help="AUC minus the split's best blind-baseline AUC"),
    _col("n_text", "members / non", sort="n_total", num=True),
]
MEAN_COLUMNS = [
    _col("scorer", "scorer", link="scorer"),
    _col("target", "target", link="target"),
    _col("mean_auc_text", "mean AUC", sort="mean_auc", num=True),
    _col("n_splits", "splits", num=True, help="number of splits behind the mean"),
    _col("mean_tpr1_text", "mean TPR@1%FPR", sort="mean_tpr1", num=True, help="over splits where it is resolvable"),
    _col("mean_excess_text", "mean AUC − blind", sort="mean_excess", num=True),
]
RESULT_FIELDS = {
    "scorer": "scorer", "scorer_version": "scorer_version", "kind": "kind", "target": "target",
    "split": "split", "track": "track", "auc": "auc", "auc_ci95_lo": "auc_lo", "auc_ci95_hi": "auc_hi",
    "tpr_at_10pct_fpr": "tpr10", "tpr_at_1pct_fpr": "tpr1", "tpr_at_0.1pct_fpr": "tpr01",
    "rank_group": "rank", "auc_minus_blind": "excess", "n_members": "n_members",
    "n_nonmembers": "n_nonmembers", "label_valid": "label_valid", "code_sha256": "code_sha256",
}
MEAN_FIELDS = {
    "scorer": "scorer", "kind": "kind", "target": "target", "mean_auc": "mean_auc", "n_splits": "n_splits",
    "mean_tpr_at_1pct_fpr": "mean_tpr1", "n_splits_tpr_resolvable": "n_tpr1", "mean_auc_minus_blind": "mean_excess",
}
TEXT_FIELDS = {"scorer", "scorer_version", "kind", "target", "split", "track"}


@dataclass
class BuildReport:
    index: Path
    out_dir: Path
    n_results: int
    pages: int
    tables: int
    rejected: list[Rejected] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "index": str(self.index), "out_dir": str(self.out_dir), "results": self.n_results,
            "pages": self.pages, "tables": self.tables, "seconds": round(self.seconds, 3),
            "rejected": [r.as_dict() for r in self.rejected],
        }


@lru_cache(maxsize=1)
def _citations() -> dict:
    if not CITATIONS.is_file():
        return {}
    return yaml.safe_load(CITATIONS.read_text()) or {}


def suite_version() -> str:
    """The suite version from the split registry (its ``version`` key, else v1) and its hash."""
    if not SPLITS_REGISTRY.is_file():
        return "v1"
    version = "v1"
    try:
        doc = yaml.safe_load(SPLITS_REGISTRY.read_text()) or {}
        version = str(doc.get("version") or doc.get("suite_version") or version)
    except yaml.YAMLError:
        pass
    return f"{version} (registry {sha256_file(SPLITS_REGISTRY)[:10]})"


def _bib_key(text: str) -> str:
    return page_slug(text).replace(".", "-").replace("-", "_")


def scorer_bibtex(scorer: dict) -> str:
    sub = scorer.get("submission") or {}
    if isinstance(sub.get("bibtex"), str) and sub["bibtex"].strip():
        return sub["bibtex"].strip()
    known = (_citations().get("scorers") or {}).get(scorer["name"])
    if known:
        return known.strip()
    authors = sub.get("authors")
    if isinstance(authors, list):
        authors = " and ".join(str(a.get("name", a)) if isinstance(a, dict) else str(a) for a in authors)
    lines = [
        f"@misc{{membench_scorer_{_bib_key(scorer['name'])},",
        f"  title  = {{{scorer['name']}: a membership-inference scorer evaluated on membench (version {', '.join(scorer['versions'])})}},",
    ]
    if authors:
        lines.append(f"  author = {{{authors}}},")
    lines.append(f"  note   = {{code SHA-256 {scorer['code_hashes'][0]}}}")
    return "\n".join(lines) + "\n}"


def dataset_bibtex(split: dict) -> str:
    cites = _citations()
    known = (cites.get("datasets") or {}).get(split["family"])
    if known:
        return known.strip()
    if split["family"] in ("demo", "control") and cites.get("membench"):
        return cites["membench"].strip()
    return (
        f"@misc{{membench_split_{_bib_key(split['id'])},\n  title = {{membench split {split['id']}}},\n"
        f"  note  = {{content SHA-256 {split['content_hash']}}}\n}}"
    )


def _card_html(cards_dir: Path, split_id: str, md: MarkdownIt) -> Markup | None:
    *parents, last = split_id.split("/")
    path = Path(cards_dir, *parents, last + ".md")
    if not path.is_file():
        return None
    # raw HTML in a card is shown as text (html=False); markdown-it also refuses javascript: links.
    # HTML comments (the cards' <!-- membench:begin/end --> block markers) are dropped first.
    text = re.sub(r"<!--.*?-->\n?", "", path.read_text(encoding="utf-8", errors="replace"), flags=re.S)
    return Markup(md.render(text))


def _with_display(row: dict) -> dict:
    row["n_text"] = f"{row['n_members']} / {row['n_nonmembers']}"
    row["n_total"] = row["n_members"] + row["n_nonmembers"]
    return row


def _table(tid: str, caption: str, rows, pinned=(), columns=RESULT_COLUMNS, fields=RESULT_FIELDS) -> dict:
    return {
        "id": tid, "caption": caption, "rows": [_with_display(r) if "n_members" in r else r for r in rows],
        "pinned": [_with_display(r) for r in pinned], "columns": columns, "fields": fields,
    }


def _safe_cell(value):
    """Neutralize spreadsheet formulas in text cells of CSV downloads."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write_downloads(data_dir: Path, table: dict, page: str) -> None:
    records = []
    for row in list(table["pinned"]) + list(table["rows"]):
        rec = {name: row.get(key) for name, key in table["fields"].items()}
        rec["permalink"] = f"{page}#{table['id']}--{row['anchor']}"
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=list(table["fields"]) + ["permalink"])
    csv_frame = frame.copy()
    for col in TEXT_FIELDS & set(csv_frame.columns):
        csv_frame[col] = csv_frame[col].map(_safe_cell)
    csv_frame.to_csv(data_dir / f"{table['id']}.csv", index=False)
    (data_dir / f"{table['id']}.json").write_text(
        json.dumps({"table": table["id"], "caption": table["caption"], "rows": records}, indent=1, default=str)
    )


def _roc_plots(rows: list[dict]) -> list[dict]:
    by_split = defaultdict(list)
    for row in rows:
        by_split[row["split"]].append(row)
    plots = []
    for split_id in sorted(by_split):
        rs = sorted(by_split[split_id], key=lambda r: -r["auc"])
        curves = [(f"{r['target']} (AUC {r['auc']:.3f})", r["roc"]["fpr"], r["roc"]["tpr"]) for r in rs]
        title = f"ROC on {split_id}"
        plots.append({
            "split": split_id, "shown": min(len(rs), MAX_SERIES), "more": len(rs) if len(rs) > MAX_SERIES else 0,
            "linear": roc_svg(curves, title=title), "loglog": roc_svg(curves, log=True, title=title + " (log-log)"),
        })
    return plots


def _size_plot(rows: list[dict]) -> Markup | None:
    series = defaultdict(dict)
    for r in rows:
        if r["size"] and r["step"] is None and not r["blind"]:
            series[r["split"]][r["size"]] = (r["size"], r["auc"], (r["auc_lo"], r["auc_hi"]))
    series = [(k, list(v.values())) for k, v in sorted(series.items()) if len(v) >= 2]
    return line_svg(series, xlabel="parameters", logx=True, title="AUC against model size") if series else None


def _step_plot(rows: list[dict]) -> Markup | None:
    series = defaultdict(dict)
    for r in rows:
        if r["step"] is not None and not r["blind"]:
            series[f"{r['target_id']} on {r['split']}"][r["step"]] = (r["step"], r["auc"], (r["auc_lo"], r["auc_hi"]))
    series = [(k, list(v.values())) for k, v in sorted(series.items()) if len(v) >= 2]
    return line_svg(series, xlabel="checkpoint step", title="AUC against checkpoint step") if series else None


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _baseline_rows(diag: dict | None) -> list[dict]:
    """One row per blind baseline of a diagnostics file (read tolerantly: the diagnostics
    stage owns that format)."""
    baselines = (diag or {}).get("baselines")
    if not isinstance(baselines, dict):
        return []
    rows = []
    for name, b in baselines.items():
        b = b if isinstance(b, dict) else {}
        auc = b.get("auc") if _num(b.get("auc")) else None
        t1 = (b.get("tpr_at_fpr") or {}).get("0.01") if isinstance(b.get("tpr_at_fpr"), dict) else b.get("tpr_at_1pct_fpr")
        if isinstance(t1, dict):
            ok = t1.get("resolvable", True) and _num(t1.get("value"))
            tpr1, tpr1_text = (t1["value"], fmt(t1["value"])) if ok else (None, "unresolvable")
        else:
            tpr1, tpr1_text = (t1, fmt(t1)) if _num(t1) else (None, "–")
        rows.append({
            "anchor": "b-" + page_slug(str(name)), "baseline": str(name), "auc": auc, "auc_text": fmt(auc),
            "tpr1": tpr1, "tpr1_text": tpr1_text, "description": str(b.get("description") or ""),
        })
    return rows


BASELINE_COLUMNS = [
    _col("baseline", "blind baseline"),
    _col("auc_text", "AUC", sort="auc", num=True),
    _col("tpr1_text", "TPR@1%FPR", sort="tpr1", num=True),
    _col("description", "what it is"),
]
BASELINE_FIELDS = {"baseline": "baseline", "auc": "auc", "tpr_at_1pct_fpr": "tpr1", "description": "description"}


def _submission_items(sub: dict) -> list[tuple[str, str]]:
    items = []
    for key, value in sub.items():
        if key == "bibtex":
            continue
        if isinstance(value, (dict, list)) and not (
            isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value)
        ):
            text = json.dumps(value, indent=1, default=str)
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value) or "none"
        else:
            text = str(value)
        items.append((str(key), text))
    return items


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["slug"] = page_slug
    return env


def _reset(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in GENERATED:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for name in ("split", "scorer", "target", "data", "schema"):
        (out_dir / name).mkdir()


def build_site(results_dir: Path, out_dir: Path = DEFAULT_OUT, *, cards_dir: Path = CARDS_DIR) -> BuildReport:
    """Build the whole site; refused result files are left out and listed in the report."""
    start = time.perf_counter()
    data: SiteData = collect_data(Path(results_dir))
    for r in data.rejected:
        log.warning("refused result file %s", r)
    out_dir = Path(out_dir)
    _reset(out_dir)
    shutil.copytree(STATIC, out_dir / "static")
    shutil.copy2(SCHEMA_FILE, out_dir / "schema" / "result.schema.json")
    env = _environment()
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    common = {
        "version": __version__, "suite_version": suite_version(), "built": _dt.date.today().isoformat(),
        "last_update": (data.last_update or "")[:10] or None,
    }
    data_dir = out_dir / "data"
    pages = tables = 0

    def render(template: str, path: Path, root: str, page_tables=(), **ctx) -> None:
        nonlocal pages, tables
        path.write_text(env.get_template(template).render(root=root, **common, **ctx), encoding="utf-8")
        rel = path.relative_to(out_dir).as_posix()
        for t in page_tables:
            _write_downloads(data_dir, t, rel)
        pages += 1
        tables += len(page_tables)

    control_rows = [r for r in data.rows if r["track"] == "control" and not r["blind"]]

    # overview
    for track in data.tracks:
        track["table"] = _table(
            f"track-{track['slug']}", f"{track['name']} track: every (scorer, target, split)",
            track["rows"], track["pinned"],
        )
        targets = track["matrix"]["targets"]
        track["matrix_table"] = _table(
            f"matrix-{track['slug']}",
            f"{track['name']} track: scorers x targets, mean AUC over splits (number of splits)",
            track["matrix"]["rows"],
            columns=[_col("scorer", "scorer", link="scorer")]
            + [_col(f"t{i}_text", t, sort=f"t{i}", num=True) for i, t in enumerate(targets)],
            fields={"scorer": "scorer", "kind": "kind",
                    **{f"{t} mean AUC": f"t{i}" for i, t in enumerate(targets)},
                    **{f"{t} splits": f"t{i}_n" for i, t in enumerate(targets)}},
        )
        track["means_table"] = _table(
            f"means-{track['slug']}", f"{track['name']} track: mean over splits per (scorer, target)",
            track["means"], columns=MEAN_COLUMNS, fields=MEAN_FIELDS,
        )
    render(
        "index.html.j2", out_dir / "index.html", "",
        [t for tr in data.tracks for t in (tr["matrix_table"], tr["means_table"], tr["table"])],
        tracks=data.tracks, rejected=data.rejected,
        splits=sorted(data.splits.values(), key=lambda s: s["id"]),
        scorers=sorted(data.scorers.values(), key=lambda s: s["name"]),
        targets=sorted(data.targets.values(), key=lambda t: t["id"]),
        membench_bib=(_citations().get("membench") or "").strip(),
    )

    for split in data.splits.values():
        results = _table(f"split-{split['slug']}", f"results on {split['id']}", split["rows"], split["blind_rows"])
        controls = _table(
            f"split-{split['slug']}-controls", "scorers on control splits (shift sensitivity)",
            [r for r in control_rows if r["split"] != split["id"]],
        )
        diag = split["diagnostics"]
        diag_json = json.dumps(diag, indent=2, default=str)[:20000] if diag else ""
        ci = (diag or {}).get("blind_auc_ci95")
        blind_ci = f"[{fmt(ci[0])}, {fmt(ci[1])}]" if isinstance(ci, list) and len(ci) == 2 and all(map(_num, ci)) else ""
        baselines = _table(
            f"split-{split['slug']}-baselines", f"blind baselines on {split['id']} (from its diagnostics)",
            _baseline_rows(diag), columns=BASELINE_COLUMNS, fields=BASELINE_FIELDS,
        )
        page_tables = [baselines, results, controls] if baselines["rows"] else [results, controls]
        render(
            "split.html.j2", out_dir / "split" / f"{split['slug']}.html", "../", page_tables,
            split=split, results=results, controls=controls, diagnostics_json=diag_json,
            baselines=baselines, blind_ci_text=blind_ci,
            card_html=_card_html(cards_dir, split["id"], md), dataset_bib=dataset_bibtex(split),
        )

    for scorer in data.scorers.values():
        rows = scorer["rows"]
        results = _table(f"scorer-{scorer['slug']}", f"results of {scorer['name']}", rows)
        controls = _table(
            f"scorer-{scorer['slug']}-controls", f"{scorer['name']} on control splits (AUC above 0.5 is shift)",
            [r for r in rows if r["track"] == "control"],
        )
        sub = scorer["submission"] if isinstance(scorer["submission"], dict) else None
        render(
            "scorer.html.j2", out_dir / "scorer" / f"{scorer['slug']}.html", "../", [results, controls],
            scorer=scorer, results=results, controls=controls, roc_plots=_roc_plots(rows),
            size_plot=_size_plot(rows), step_plot=_step_plot(rows),
            submission_items=_submission_items(sub) if sub else [], scorer_bib=scorer_bibtex(scorer),
        )

    for target in data.targets.values():
        results = _table(f"target-{target['slug']}", f"results on {target['id']}", target["rows"])
        facts = []
        for key in ("path", "weights_sha256", "tokenizer_sha256", "dtype", "context_rule", "max_length"):
            values = sorted({str(t.get(key)) for t in target["records"] if t.get(key) is not None})
            if values:
                facts.append((key, ", ".join(values)))
        render(
            "target.html.j2", out_dir / "target" / f"{target['slug']}.html", "../", [results],
            target=target, results=results, facts=facts,
            size_text=f"{target['size']:,.0f} parameters" if target["size"] else "unknown",
            recipe_facts=ftsite.recipe_facts([r for r in data.records if r["target"]["id"] == target["id"]]),
        )

    # the fine-tuned track's page: a table per recipe family, the generated-data comparisons
    families = ftsite.family_rows(data.rows)
    if families:
        family_tables = [{"family": f, "table": _table(f"finetune-{page_slug(f)}",
                                                       f"fine-tuned track, {f} recipes: every (scorer, target, split)", rows)}
                         for f, rows in families.items()]
        render("finetune.html.j2", out_dir / "finetune.html", "", [t["table"] for t in family_tables],
               family_tables=family_tables, comparisons=ftsite.generated_comparisons(data.records))

    return BuildReport(
        index=out_dir / "index.html", out_dir=out_dir, n_results=len(data.rows), pages=pages, tables=tables,
        rejected=data.rejected, seconds=time.perf_counter() - start,
    )


def build(results_dir: Path, out_dir: Path = DEFAULT_OUT) -> Path:
    """Build the site and return the path of its index (refused files are logged and listed)."""
    return build_site(results_dir, out_dir).index


__all__ = ["DEFAULT_OUT", "BuildReport", "build", "build_site", "fmt"]
