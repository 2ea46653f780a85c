"""Rendering: one function per kind of page, writing HTML and every table's downloads.

Every piece of text from a result file reaches HTML through jinja2 autoescaping (or
markupsafe in the SVG plots), so a scorer called ``<script>`` renders as text.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from ..results.citations import dataset_bibtex as family_bibtex
from ..results.citations import membench_bibtex
from ..results.published import disclose_card
from . import columns as C
from . import finetune as ftsite
from . import groupviews, precision
from . import reported as R
from .model import NOT_APPLICABLE, SiteData, by_auc, page_slug
from .plots import MAX_SERIES, auc_vs_blind_svg, histogram_svg, line_svg, roc_svg
from .tables import make_table, write_downloads

PRIVATE_SCORES = "not published on a private split (with the ROC points they would reveal the labels)"


def environment(templates: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates)),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["slug"] = page_slug
    env.filters["breakable"] = breakable
    return env


def breakable(text) -> Markup:
    """Escaped text with line-break opportunities after / @ _ (long split and target ids wrap
    at their parts instead of overflowing a table)."""
    out = str(escape(str(text)))
    for ch in ("/", "@", "_"):
        out = out.replace(ch, ch + "<wbr>")
    return Markup(out)


def _bib_key(text: str) -> str:
    return page_slug(text).replace(".", "-").replace("-", "_")


def dataset_bibtex(split: dict) -> str:
    known = family_bibtex(split["family"])
    if known:
        return known
    if split["family"] in ("demo", "control") and membench_bibtex():
        return membench_bibtex()
    note = f"content SHA-256 {split['content_hash']}" if split.get("content_hash") else "private split"
    return f"@misc{{membench_split_{_bib_key(split['id'])},\n  title = {{membench split {split['id']}}},\n  note  = {{{note}}}\n}}"


_BLIND_TABLE = re.compile(r"^\|\s*blind baseline\s*\|.*\n(?:\|.*(?:\n|$))*", re.M | re.I)


def card_html(cards_dir: Path, split_id: str, md: MarkdownIt, private: bool = False) -> Markup | None:
    """A split's data card as HTML, as it may be published (``results.disclose_card``: on a
    private split without its generated per-class figures). Raw HTML in a card is shown as text
    (html=False); markdown-it refuses javascript: links; the cards' block markers are dropped;
    the card's blind-baseline table is left out, since the page shows the blind baselines once,
    pinned on its results table."""
    *parents, last = split_id.split("/")
    path = Path(cards_dir, *parents, last + ".md")
    if not path.is_file():
        return None
    text = disclose_card(path.read_text(encoding="utf-8", errors="replace"), private)
    text = re.sub(r"<!--.*?-->\n?", "", text, flags=re.S)
    text = _BLIND_TABLE.sub(_blind_table, text)
    return Markup(md.render(text))


def _blind_table(match: re.Match) -> str:
    """The card's blind-baseline table as the page shows it: the text-only baselines are pinned on
    the results table, so only the tokenizer baselines (one per tokenizer of the split's targets,
    not a result of their own) stay, under the table's header."""
    lines = match.group(0).rstrip("\n").split("\n")
    tokenizer_rows = [line for line in lines[2:] if "blind_tokenizer" in line]
    note = "*The text-only blind baselines are pinned at the top of the results table above.*\n"
    if not tokenizer_rows:
        return note
    return (note + "\n*The tokenizer baseline (the target's tokenizer alone, no model; it counts in the best blind "
            "AUC of that target's records):*\n\n" + "\n".join(lines[:2] + tokenizer_rows) + "\n")


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


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def diagnostics_baseline_rows(split: dict) -> list[dict]:
    """Pinned rows for the blind baselines a split's diagnostics name but that have no result
    record of their own (read tolerantly: the diagnostics stage owns that format)."""
    baselines = (split["diagnostics"] or {}).get("baselines")
    if not isinstance(baselines, dict):
        return []
    have = {r["scorer"] for r in split["blind_rows"]}
    rows = []
    for name, b in baselines.items():
        if str(name) in have:
            continue
        b = b if isinstance(b, dict) else {}
        auc = b.get("auc") if _num(b.get("auc")) else None
        ci = b.get("auc_ci95") if isinstance(b.get("auc_ci95"), list) and len(b["auc_ci95"]) == 2 else None
        d = precision.decimals_for(*ci) if ci and all(map(_num, ci)) else precision.DEGENERATE_DECIMALS
        t1 = (b.get("tpr_at_fpr") or {}).get("0.01") if isinstance(b.get("tpr_at_fpr"), dict) else b.get("tpr_at_1pct_fpr")
        tpr1, tpr1_text, tpr1_why = None, "–", "not in the diagnostics"
        if isinstance(t1, dict) and t1.get("resolvable") is False:
            tpr1_text = tpr1_why = "unresolvable"
        elif isinstance(t1, dict) and _num(t1.get("value")):
            tpr1, tpr1_text, tpr1_why = round(t1["value"], d), precision.text(t1["value"], d), None
        elif _num(t1):
            tpr1, tpr1_text, tpr1_why = round(t1, d), precision.text(t1, d), None
        rows.append({
            "anchor": "b-" + page_slug(str(name)), "scorer": str(name), "scorer_label": str(name),
            "scorer_slug": None, "target": "none", "target_slug": None, "split": split["id"],
            "split_slug": split["slug"], "kind": "blind_baseline", "blind": True, "setting": "",
            "auc": precision.rounded(auc, d), "auc_text": precision.text(auc, d),
            "auc_lo": precision.rounded(ci[0], d) if ci else None, "auc_hi": precision.rounded(ci[1], d) if ci else None,
            "ci_text": precision.interval_text(*ci, d) if ci else "–",
            "auc_ci_text": precision.text(auc, d) + (" " + precision.interval_text(*ci, d) if ci else ""),
            "tpr1": tpr1, "tpr1_text": tpr1_text, "tpr1_why": tpr1_why,
            "tpr10": None, "tpr10_text": "–", "tpr01": None, "tpr01_text": "–",
            "vs_blind_text": "n/a", "excess": None, "rank": None, "rank_text": "n/a", "n_text": "–", "n_total": None,
            "scores_text": "–", "scores_href": None, "scores_href_why": "diagnostics only: no result record",
            "label_valid": True, "note": str(b.get("description") or ""),
        })
    return rows


class Renderer:
    """Writes pages and downloads into one output folder and counts them."""

    def __init__(self, data: SiteData, out_dir: Path, templates: Path, cards_dir: Path, common: dict):
        self.data, self.out_dir, self.cards_dir, self.common = data, out_dir, cards_dir, common
        self.env = environment(templates)
        self.md = MarkdownIt("commonmark", {"html": False}).enable("table")
        self.data_dir = out_dir / "data"
        self.pages = self.tables = 0

    def render(self, template: str, rel: str, page_tables=(), **ctx) -> None:
        path = self.out_dir / rel
        root = "../" * rel.count("/")
        path.write_text(self.env.get_template(template).render(root=root, **self.common, **ctx), encoding="utf-8")
        for t in page_tables:
            write_downloads(self.data_dir, t, rel)
        self.pages += 1
        self.tables += len(page_tables)

    # per-sample scores -------------------------------------------------------------------
    def publish_scores(self) -> None:
        """Copy every public row's per-sample file into data/scores/<sha256>.parquet (content
        addressed, so two rows never collide) and link it from the row; a private split's rows
        have none (``results.disclose`` keeps no per-sample file of theirs)."""
        scores_dir = self.data_dir / "scores"
        scores_dir.mkdir(parents=True, exist_ok=True)
        for row in self.data.rows:
            if row["private"] or not row["scores_path"]:
                row["scores_href"], row["scores_text"], row["scores_href_why"] = None, "private", PRIVATE_SCORES
                continue
            name = f"{row['scores_sha256']}.parquet"
            if not (scores_dir / name).exists():
                shutil.copyfile(row["scores_path"], scores_dir / name)
            row["scores_href"] = f"data/scores/{name}"
            row["scores_text"] = "parquet"

    # pages -------------------------------------------------------------------------------
    def _panel_rows(self, rows, root: str) -> list[dict]:
        out = []
        for r in rows:
            above = None if r["vs_blind"] is None else r["vs_blind"] == "above"
            out.append({
                "label": r["scorer_label"] + ("" if r["target_id"] != "none" else " (model-free)"),
                "auc": r["auc"], "lo": r["auc_lo"], "hi": r["auc_hi"], "above": above, "model_free": r["model_free"],
                "href": f"{root}scorer/{r['scorer_slug']}.html",
                "tip": f"{r['scorer_label']} on {r['target']}: AUC {r['auc_text']} {r['ci_text']}; "
                       f"vs blind: {r['vs_blind_text'] if r['vs_blind_why'] is None else r['vs_blind_why']}",
            })
        return out

    def _figure(self, split: dict, rows, title: str, root: str) -> Markup:
        return auc_vs_blind_svg(self._panel_rows(rows, root), blind=split["blind_auc"], blind_ci=split["blind_ci"],
                                title=title, control=split["control"])

    def index(self) -> None:
        page_tables = []
        for track in self.data.tracks:
            for g in track["groups"]:
                label = f"{track['name']} track" + (", private splits" if g["private"] else "")
                columns = R.with_reported(C.with_subsets(C.TRACK_COLUMNS, g["rows"]), g["rows"] + g["pinned"])
                g["table"] = make_table(f"track-{g['prefix']}", f"{label}: every (scorer, target, split)",
                                        g["rows"], g["pinned"], columns=columns,
                                        fields=R.reported_fields(C.RESULT_FIELDS, columns))
                targets = g["matrix"]["targets"]
                g["matrix_table"] = make_table(
                    f"matrix-{g['prefix']}", f"{label}: scorers x targets, mean AUC over splits (number of splits)",
                    g["matrix"]["rows"], columns=C.matrix_columns(targets), fields=C.matrix_fields(targets))
                g["means_table"] = make_table(f"means-{g['prefix']}", f"{label}: mean over splits per (scorer, target)",
                                              g["means"], columns=C.MEAN_COLUMNS, fields=C.MEAN_FIELDS)
                for i in range(len(targets)):
                    for row in g["matrix"]["rows"]:
                        row.setdefault(f"t{i}_why", "no result")
                g["figures"] = [
                    {"split": p["split"], "target": p["target"],
                     "svg": self._figure(p["split"], p["rows"], f"{p['split']['id']} on {p['target']}", "")}
                    for p in g["panels"]
                ]
                page_tables += [g["table"], g["matrix_table"], g["means_table"]]
        reported = self.data.reported
        papers_table = make_table("reported-papers", "values papers reported, by paper, and how many are reproduced here",
                                  reported["papers"], columns=R.PAPERS_COLUMNS, fields=R.PAPERS_FIELDS)
        if reported["papers"]:
            page_tables.append(papers_table)
        self.render(
            "index.html.j2", "index.html", page_tables, tracks=self.data.tracks, rejected=self.data.rejected,
            reported=reported, papers_table=papers_table,
            splits=sorted(self.data.splits.values(), key=lambda s: s["id"]), methods=self.data.methods,
            targets=sorted(self.data.targets.values(), key=lambda t: t["id"]), membench_bib=membench_bibtex(),
        )

    def catalog(self) -> None:
        """The catalog: every method with its ablations and their settings, each linking its page."""
        self.render("scorers.html.j2", "scorers.html", methods=self.data.methods)

    def split(self, split: dict) -> None:
        control_rows = sorted((r for r in self.data.rows if r["control"] and not r["blind"] and r["split"] != split["id"]),
                              key=lambda r: (r["split"],) + by_auc(r))
        pinned = split["blind_rows"] + diagnostics_baseline_rows(split)
        columns = R.with_reported(C.SPLIT_COLUMNS, split["rows"] + pinned, split["reported_only"])
        results = make_table(f"split-{split['slug']}", f"results on {split['id']}", split["rows"], pinned,
                             columns=columns, fields=R.reported_fields(C.RESULT_FIELDS, columns),
                             reported_only=split["reported_only"])
        controls = make_table(f"split-{split['slug']}-controls", "scorers on control splits (shift sensitivity)",
                              control_rows, columns=C.TRACK_COLUMNS, fields=C.RESULT_FIELDS)
        by_target = defaultdict(list)
        for r in split["rows"]:
            by_target[r["target"] if r["target_id"] != "none" else None].append(r)
        model_free = sorted(by_target.pop(None, []), key=by_auc)
        figures = []
        for target in sorted(by_target, key=lambda t: (t != split["primary_target"], t)):
            rows = sorted(by_target[target], key=by_auc) + model_free
            figures.append({"target": target, "svg": self._figure(split, rows, f"{split['id']} on {target}", "../")})
        if not figures and model_free:
            figures.append({"target": "no model", "svg": self._figure(split, model_free, split["id"], "../")})
        rests = []
        for r in split["rests"]:
            columns = R.with_reported(C.SPLIT_COLUMNS, r["rows"] + r["blind_rows"], r["reported_only"])
            rests.append({**r, "table": make_table(
                f"split-{split['slug']}-rest-{r['slug']}",
                f"results on {split['id']}, evaluated rest of calibration subset {r['name']}", r["rows"], r["blind_rows"],
                columns=columns, fields=R.reported_fields(C.RESULT_FIELDS, columns), reported_only=r["reported_only"])})
        diag = split["diagnostics"]
        self.render(
            "split.html.j2", f"split/{split['slug']}.html", [results] + [r["table"] for r in rests] + [controls],
            split=split, results=results, rests=rests, controls=controls, figures=figures,
            diagnostics_json=json.dumps(diag, indent=2, default=str)[:20000] if diag else "",
            card_html=card_html(self.cards_dir, split["id"], self.md, split["private"]),
            dataset_bib=dataset_bibtex(split),
        )

    def _roc_plots(self, rows: list[dict]) -> list[dict]:
        """ROC curves (linear and log-log) per split, of public rows only: a private split
        publishes no ROC (``results.disclose``)."""
        by_split = defaultdict(list)
        for row in rows:
            if row["roc"]:
                by_split[_where(row)].append(row)
        plots = []
        for split_id in sorted(by_split):
            rs = sorted(by_split[split_id], key=by_auc)
            curves = [(f"{r['target']}{' ' + r['setting'] if r['setting'] else ''} (AUC {r['auc_text']})",
                       r["roc"]["fpr"], r["roc"]["tpr"]) for r in rs]
            n_pos = max(r["n_members"] for r in rs)
            n_neg = max(r["n_nonmembers"] for r in rs)
            title = f"ROC on {split_id}"
            plots.append({
                "split": split_id, "shown": min(len(rs), MAX_SERIES), "more": len(rs) if len(rs) > MAX_SERIES else 0,
                "linear": roc_svg(curves, title=title),
                "loglog": roc_svg(curves, log=True, title=title + " (log-log)", n_members=n_pos, n_nonmembers=n_neg),
            })
        return plots

    def _class_views(self, page: dict) -> tuple[list[dict], list[dict], list[dict], list[str]]:
        """Per split (primary target): the score histogram per class, AUC by length and the
        per-class length statistics, as the gate wrote them into public records."""
        views, buckets, stats, missing = [], [], [], []
        by_split = defaultdict(list)
        for r in page["rows"]:
            if not r["subset"]:  # per-class views of the whole split's rows
                by_split[r["split"]].append(r)
        for split_id in sorted(by_split):
            split = self.data.splits[split_id]
            if split["private"]:
                missing.append(f"{split_id}: a private split (per-class views would reveal its labels)")
                continue
            rows = by_split[split_id]
            primary = [r for r in rows if r["target"] == split["primary_target"]] or rows
            for row in sorted(primary, key=lambda r: (r["target"], r["scorer_label"])):
                v = row["views"]
                if not v:
                    why = (f"scored per {row['unit'][:-1]}" if row["unit"] != "samples" else
                           "the split was not materialized where the publication gate ran")
                    missing.append(f"{split_id}, {row['target']}: {why}")
                    continue
                title = f"{row['scorer_label']} on {split_id}, {row['target']}"
                views.append({"split": split_id, "target": row["target"],
                              "svg": histogram_svg(v["histogram"], title=title)})
                for name in ("members", "nonmembers"):
                    st = v["length_stats"][name]
                    stats.append({"split": split_id, "target": row["target"], "class": name, **st})
                for i, b in enumerate(v["length_buckets"]):
                    ci = b["auc_ci95"]
                    d = precision.decimals_for(*ci) if ci else precision.DEGENERATE_DECIMALS
                    buckets.append({
                        "anchor": page_slug(f"l-{split_id}--{row['target']}--{row['setting']}--{i}"),
                        "split": split_id, "split_slug": split["slug"], "target": row["target"],
                        "target_slug": row["target_slug"], "words": b["words"],
                        "auc": precision.rounded(b["auc"], d), "auc_text": precision.text(b["auc"], d),
                        "auc_why": None if b["auc"] is not None else "one class only in this bucket",
                        "auc_lo": precision.rounded(ci[0], d) if ci else None,
                        "auc_lo_why": None if ci else "one class only in this bucket",
                        "auc_hi": precision.rounded(ci[1], d) if ci else None,
                        "auc_hi_why": None if ci else "one class only in this bucket",
                        "ci_text": precision.interval_text(*ci, d) if ci else "–",
                        "n_members": b["n_members"], "n_nonmembers": b["n_nonmembers"],
                        "n_text": f"{b['n_members']} / {b['n_nonmembers']}", "n_total": b["n_members"] + b["n_nonmembers"],
                    })
        return views, buckets, stats, sorted(set(missing))

    def scorer(self, page: dict) -> None:
        """A scorer setting's page: its name, the base method's name, definition and citation,
        its own definition, and its results."""
        rows, name = page["rows"], page["name"]
        columns = R.with_reported(C.with_subsets(C.SCORER_COLUMNS, rows), rows, page["reported_only"])
        results = make_table(f"scorer-{page['slug']}", f"results of {name}", rows, columns=columns,
                             fields=R.reported_fields(C.RESULT_FIELDS, columns), reported_only=page["reported_only"])
        controls = make_table(f"scorer-{page['slug']}-controls", f"{name} on control splits (AUC above 0.5 is shift)",
                              [r for r in rows if r["control"]], columns=C.SCORER_COLUMNS, fields=C.RESULT_FIELDS)
        views, buckets, stats, missing = self._class_views(page)
        bucket_table = make_table(f"scorer-{page['slug']}-length", f"{name}: AUC by text length (words)",
                                  buckets, columns=C.BUCKET_COLUMNS, fields=C.BUCKET_FIELDS)
        sub = page["submission"] if isinstance(page["submission"], dict) else None
        siblings = [p for m in self.data.methods if m["id"] == page["method"] for c in m["classes"] for p in c["pages"]
                    if p is not page]
        self.render(
            "scorer.html.j2", f"scorer/{page['slug']}.html", [results, controls, bucket_table],
            scorer=page, display=page["display"], results=results, controls=controls,
            roc_plots=self._roc_plots(rows), size_plot=_size_plot(rows), step_plot=_step_plot(rows),
            class_views=views, bucket_table=bucket_table, length_stats=stats, views_missing=missing,
            bucket_resamples=next((r["views"]["bucket_resamples"] for r in rows if r["views"]), None),
            submission_items=_submission_items(sub) if sub else [], siblings=siblings,
            user_views=groupviews.per_user_views([r["record"] for r in rows]),
            run_details=[{"where": _where(r), "target": r["target"], "details": r["method_details"], "flags": r["flags"]}
                         for r in rows if r.get("method_details") or r.get("flags")],
        )

    def target(self, target: dict) -> None:
        columns = R.with_reported(C.with_subsets(C.TARGET_COLUMNS, target["rows"]), target["rows"],
                                  target["reported_only"])
        results = make_table(f"target-{target['slug']}", f"results on {target['id']}", target["rows"], columns=columns,
                             fields=R.reported_fields(C.RESULT_FIELDS, columns), reported_only=target["reported_only"])
        facts = []
        for key in ("path", "weights_sha256", "tokenizer_sha256", "dtype", "context_rule", "max_length"):
            values = sorted({str(t.get(key)) for t in target["records"] if t.get(key) is not None})
            if values:
                facts.append((key, ", ".join(values)))
        counted = target["n_parameters"]
        if counted:
            size_text = ", ".join(f"{n:,}" for n in counted) + " parameters (counted from the loaded model)"
        elif target["nominal"]:
            size_text = f"not counted in these records (nominal size {target['nominal']}, from the registry)"
        else:
            size_text = "not counted in these records"
        self.render("target.html.j2", f"target/{target['slug']}.html", [results], target=target, results=results,
                    facts=facts, size_text=size_text, recipe_facts=ftsite.recipe_facts(target["recipes"]))

    def paper(self, paper: dict) -> None:
        """A paper's page: each of its reported tables, where it was read, the preset that would
        reproduce it, and every row with its status (rows reproduced first, reported-only apart)."""
        tables = [{**t, "table": {**make_table(t["table_id"], f"{paper['key']}, {t['title']}", t["compared"],
                                               columns=R.PAPER_COLUMNS, fields=R.PAPER_FIELDS, reported_only=t["only"]),
                                   "plain": True}}  # the status column says what the row tags say elsewhere
                  for t in paper["tables"]]
        self.render("paper.html.j2", f"paper/{paper['slug']}.html", [t["table"] for t in tables], paper=paper,
                    tables=tables, statuses=R.STATUSES)

    def finetune(self) -> None:
        """The fine-tuned track's page: a table per recipe family, the defence comparison (with
        interval widths and where intervals overlap), the generated-data comparisons."""
        families = ftsite.family_rows(self.data.rows)
        if not families:
            return
        tables = [{"family": f, "table": make_table(f"finetune-{page_slug(f)}",
                                                    f"fine-tuned track, {f} recipes: every (scorer, target, split)",
                                                    rows, columns=C.with_subsets(C.TRACK_COLUMNS, rows),
                                                    fields=C.RESULT_FIELDS)}
                  for f, rows in families.items()]
        defences = groupviews.defence_rows(self.data.rows)
        self.render("finetune.html.j2", "finetune.html", [t["table"] for t in tables], family_tables=tables,
                    comparisons=ftsite.generated_comparisons(self.data.rows), defence_rows=defences,
                    defence_notes=groupviews.defence_overlap_notes(defences))


def _where(row: dict) -> str:
    """The split, or the evaluated rest of a calibration subset of it."""
    return row["split"] + (f" (rest of {row['subset']})" if row.get("subset") else "")


def _size_plot(rows: list[dict]) -> Markup | None:
    series = defaultdict(dict)
    for r in rows:
        if r["size"] and r["step"] is None and not r["blind"]:
            series[_where(r) + (f" ({r['setting']})" if r["setting"] else "")][r["size"]] = (
                r["size"], r["auc"], (r["auc_lo"], r["auc_hi"]))
    series = [(k, list(v.values())) for k, v in sorted(series.items()) if len(v) >= 2]
    return line_svg(series, xlabel="parameters", logx=True, title="AUC against model size") if series else None


def _step_plot(rows: list[dict]) -> Markup | None:
    series = defaultdict(dict)
    for r in rows:
        if r["step"] is not None and not r["blind"]:
            series[f"{r['target_id']} on {_where(r)}" + (f" ({r['setting']})" if r["setting"] else "")][r["step"]] = (
                r["step"], r["auc"], (r["auc_lo"], r["auc_hi"]))
    series = [(k, list(v.values())) for k, v in sorted(series.items()) if len(v) >= 2]
    return line_svg(series, xlabel="checkpoint step", title="AUC against checkpoint step") if series else None


__all__ = ["NOT_APPLICABLE", "Renderer", "card_html", "dataset_bibtex"]
