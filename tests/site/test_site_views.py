"""The site's views that need more than the shared fixture: private splits, per-class views from
a materialized split, new tracks and group-level records, CSV safety, rounding, counted
parameters from a real run."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from benchmark.results import write
from benchmark.results.gate import publish
from synthetic_results import synthetic_record
from benchmark.site import build_site
from benchmark.site.precision import decimals_for
from benchmark.site.tables import safe_cell
from site_helpers import local_home, materialize_local_split, record_on_split  # noqa: F401 - a fixture


# --- rounding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lo, hi, decimals", [
    (0.9410, 0.9748, 2),   # half-width 0.017 -> 0.02
    (0.955, 0.963, 3),     # 0.004
    (0.40, 0.60, 1),       # 0.1
    (0.10, 0.292, 1),      # 0.096 -> 0.1
    (0.5, 0.5, 3),         # degenerate interval
    (0.49999, 0.50001, 4),  # capped at 4 decimals
    (0.0, 1.0, 1),         # at least one
])
def test_decimals_follow_the_interval_half_width(lo, hi, decimals):
    assert decimals_for(lo, hi) == decimals


def test_published_figures_are_rounded_to_their_interval(tmp_path):
    rec, uids, scores = synthetic_record("synthetic/r", "pythia-160m", "loss", n=400, strength=1.0)
    write(tmp_path / "results", rec, uids, scores)
    publish(tmp_path / "results")
    report = build_site(tmp_path / "results", tmp_path / "site")
    row = json.loads((report.out_dir / "data" / "scorer-loss.json").read_text())["rows"][0]
    d = decimals_for(*rec["metrics"]["auc_ci95"])
    assert row["auc"] == round(rec["metrics"]["auc"], d) != rec["metrics"]["auc"]
    html = (report.out_dir / "scorer" / "loss.html").read_text()
    assert f">{rec['metrics']['auc']:.{d}f} [" in html and f"{rec['metrics']['auc']:.6f}" not in html


# --- CSV cells --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", " =1", "\n=HYPERLINK(\"x\")",
    "\r\n  @x", "\u00a0=1", "\x00=1", "\u2028+1", "\uff1d1+1", "|calc", "%0A=1",
])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralized(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["loss", "min_k (k=0.1)", "a=b", "0.5", "", "unresolvable"])
def test_csv_cells_that_are_plain_text_are_kept(value):
    assert safe_cell(value) == value


def test_hostile_names_are_neutralized_in_the_downloaded_csv(tmp_path):
    name = "\n=HYPERLINK(\"http://evil\",\"x\")"
    rec, uids, scores = synthetic_record("synthetic/csv", "pythia-160m", name, kind="submission", n=60)
    write(tmp_path / "results", rec, uids, scores)
    publish(tmp_path / "results")
    report = build_site(tmp_path / "results", tmp_path / "site")
    csv = pd.read_csv(report.out_dir / "data" / "track-pretraining.csv")
    assert csv.loc[0, "scorer"] == "'" + name and csv.loc[0, "scorer_name"] == "'" + name
    assert csv.loc[0, "tpr_at_0.1pct_fpr"] == "unresolvable"


# --- LaTeX -----------------------------------------------------------------------------------

def test_latex_export_escapes_every_special_character():
    from benchmark.site.tables import latex, tex_escape

    assert tex_escape("a_b & 50% $x$ #1 {y} ~z ^w \\ end") == (
        r"a\_b \& 50\% \$x\$ \#1 \{y\} \textasciitilde{}z \textasciicircum{}w \textbackslash{} end")
    table = {"id": "t", "caption": "a & b", "pinned": [], "columns": [
        {"key": "name", "label": "scorer", "num": False}, {"key": "auc", "label": "AUC − blind", "num": True}],
        "rows": [{"name": "x & y_z", "auc": "+0.1"}, {"name": "50%", "auc": None}]}
    tex = latex(table)
    body = tex.split("\\midrule\n")[1].split("\\bottomrule")[0].splitlines()
    assert body == [r"x \& y\_z & +0.1 \\", r"50\% & -- \\"]
    assert "\\begin{tabular}{lr}" in tex and "\\caption{a \\& b}" in tex and "AUC - blind" in tex


# --- private splits ---------------------------------------------------------------------------

def test_private_split_results_are_shown_apart_and_labels_said_private(local_home, tmp_path):
    root = tmp_path / "results"
    for split_id, private in (("synthetic/public", False), ("synthetic/secret", True)):
        split = materialize_local_split(split_id, n=80, seed=int(private))  # the Ladder decides where labels are
        for seed, scorer in enumerate(("loss", "zlib")):
            rec, uids, scores = record_on_split(split, scorer, strength=1.0, seed=seed)
            rec["split"]["private"] = private
            write(root, rec, uids, scores)
    assert publish(root).ok
    report = build_site(root, tmp_path / "site")
    html = (report.out_dir / "index.html").read_text()
    public_table = html.split('id="track-pretraining"')[1].split("</table>")[0]
    private_table = html.split('id="track-pretraining-private"')[1].split("</table>")[0]
    assert "synthetic/public" in public_table and "synthetic/secret" not in public_table
    assert "synthetic/secret" in private_table and "synthetic/public" not in private_table
    assert 'id="means-pretraining-private"' in html and 'id="figure-pretraining-private"' in html
    public_page = (report.out_dir / "split" / "synthetic-public.html").read_text()
    secret_page = (report.out_dir / "split" / "synthetic-secret.html").read_text()
    assert "labels of this split are <strong>public</strong>" in public_page and "could embed them" in public_page
    assert "labels of this split are <strong>private</strong>" in secret_page
    assert "public</strong>" not in secret_page
    # per-sample scores of a private split are not published (with the ROC they give the labels away)
    private_rows = json.loads((report.out_dir / "data" / "track-pretraining-private.json").read_text())["rows"]
    assert all(r["per_sample_scores"].startswith("not published on a private split") for r in private_rows)
    assert len(list((report.out_dir / "data" / "scores").iterdir())) == 2  # the public rows' files only
    splits = {s["id"]: s for s in _api(root).get("/api/splits").json()}
    assert splits["synthetic/secret"]["private"] is True and splits["synthetic/public"]["private"] is False


def _api(root):
    from fastapi.testclient import TestClient

    from benchmark.server import create_app

    return TestClient(create_app(root.parent / "no-site", root, include_submissions=False))


# --- per-class views --------------------------------------------------------------------------

def test_scorer_page_shows_class_histograms_and_auc_by_length_bucket(local_home, tmp_path):
    split = materialize_local_split()
    rec, uids, scores = record_on_split(split, "loss", strength=0.5, length_effect=2.0)
    path = write(tmp_path / "results", rec, uids, scores)
    publish(tmp_path / "results")  # the gate, which reads the labels, writes the views into the record
    assert json.loads(path.read_text())["views"]["length_stats"]["members"]["n"] == 80
    report = build_site(tmp_path / "results", tmp_path / "site")
    html = (report.out_dir / "scorer" / "loss.html").read_text()
    classes = html.split('id="classes"')[1].split("</section>")[0]
    assert classes.count("<svg") == 1 and "members (n=80)" in classes and "non-members (n=80)" in classes
    rows = json.loads((report.out_dir / "data" / "scorer-loss-length.json").read_text())["rows"]
    assert len(rows) == 4 and sum(r["n_members"] + r["n_nonmembers"] for r in rows) == 160
    # each bucket's AUC is sklearn's on exactly the texts whose word count falls in the bucket
    labels = split.labels()
    words = split.samples.set_index("uid")["text"].map(lambda t: len(t.split()))
    frame = pd.DataFrame({"score": scores, "label": labels.loc[uids].to_numpy(), "words": words.loc[uids].to_numpy()})
    for i, r in enumerate(rows):
        a, b = map(int, r["words"].split("–"))
        part = frame[(frame["words"] >= a) & (frame["words"] <= b)]
        assert (int(part["label"].sum()), int((part["label"] == 0).sum())) == (r["n_members"], r["n_nonmembers"])
        expected = roc_auc_score(part["label"], part["score"])
        assert r["auc"] == pytest.approx(expected, abs=0.5 * 10 ** -len(str(r["auc"]).split(".")[1]))
    # the strength grows with length here, so the longest bucket separates best
    assert rows[-1]["auc"] > rows[0]["auc"]
    # only aggregates reach the pages and tables: no sample id (let alone its label) is in them
    uid = split.samples["uid"].iloc[0]
    for f in report.out_dir.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".csv", ".html", ".md", ".tex"):
            assert uid not in f.read_text(), f
    hist = re.findall(r'<polyline fill="none" stroke="[^"]+" stroke-width="1.6" points="([^"]+)"', classes)
    assert len(hist) == 2


def test_histogram_fractions_sum_to_one_per_class(local_home):
    from benchmark.results import views

    split = materialize_local_split()
    labels = split.labels()
    frame = pd.DataFrame({"score": np.linspace(0, 1, len(labels)), "label": labels.to_numpy(), "words": 10})
    h = views.class_histogram(frame)
    assert sum(h["members"]) == pytest.approx(1) and sum(h["nonmembers"]) == pytest.approx(1)
    assert h["n_members"] == h["n_nonmembers"] == 80


def test_per_class_views_say_why_when_the_split_is_not_at_hand(tmp_path, local_home):
    rec, uids, scores = synthetic_record("synthetic/absent", "pythia-160m", "loss", n=60)
    write(tmp_path / "results", rec, uids, scores)
    publish(tmp_path / "results")
    report = build_site(tmp_path / "results", tmp_path / "site")
    html = (report.out_dir / "scorer" / "loss.html").read_text()
    assert "Per-class views left out:" in html and "not materialized where the publication gate ran" in html


def test_a_record_whose_content_hash_differs_from_the_materialized_split_gets_no_views(local_home, tmp_path):
    split = materialize_local_split()
    rec, uids, scores = record_on_split(split, "loss")
    rec["split"]["content_hash"] = "0" * 64
    path = write(tmp_path / "results", rec, uids, scores)
    report = publish(tmp_path / "results")
    assert "another content hash" in report.not_recomputed[0][1] and "views" not in json.loads(path.read_text())
    html = (build_site(tmp_path / "results", tmp_path / "site").out_dir / "scorer" / "loss.html").read_text()
    assert "not materialized where" in html and "<svg" not in html.split('id="classes"')[1].split("</section>")[0]


# --- tracks are data --------------------------------------------------------------------------

def test_a_new_track_and_group_level_records_need_no_new_code(tmp_path):
    root = tmp_path / "results"
    recipe = {"id": "demo-lora", "sha256": "ab" * 32, "kind": "finetune", "base": "demo/neox-tiny",
              "method": {"kind": "lora", "r": 64, "alpha": 16, "dropout": 0.1}, "assign": "user",
              "defences": {"per_user_cap": 8}}
    for scorer, kind in (("loss", None), ("user_inference", "group")):
        rec, uids, scores = synthetic_record("finetune/demo-lora", "ft/demo-lora", scorer, track="finetune",
                                             family="finetune", n=40, strength=2.0)
        rec["provenance"]["recipe"] = recipe
        if kind:
            rec["kind"] = kind
        write(root, rec, uids, scores)
    rec, uids, scores = synthetic_record("newtrack/x", "pythia-160m", "loss", track="brand-new", family="new", n=40)
    write(root, rec, uids, scores)
    publish(root)
    report = build_site(root, tmp_path / "site")
    html = (report.out_dir / "index.html").read_text()
    assert re.findall(r'data-tab="section-([a-z-]+)"', html) == ["finetune", "brand-new"]
    assert 'id="track-finetune"' in html and 'id="track-brand-new"' in html
    rows = json.loads((report.out_dir / "data" / "track-finetune.json").read_text())["rows"]
    assert {r["scorer"]: r["unit"] for r in rows} == {"loss": "samples", "user_inference": "groups"}
    assert "20 / 20 groups" in html
    target = (report.out_dir / "target" / "ft-demo-lora.html").read_text()
    assert 'id="recipe"' in target and "demo-lora" in target and "LoRA r 64" in target
    assert "at most 8 texts per user" in target


# --- counted parameters from a real run -------------------------------------------------------

@pytest.mark.slow
def test_records_of_a_real_run_carry_the_counted_parameters(demo_results, tmp_path):
    from benchmark import targets

    loaded = targets.load_target("demo/neox-tiny")
    counted = sum(p.numel() for p in loaded.model.parameters())
    recs = [json.loads(p.read_text()) for p in demo_results.rglob("*.json") if "_diagnostics" not in p.parts]
    attack_recs = [r for r in recs if r["scorer"]["kind"] == "attack"]
    assert attack_recs and {r["target"]["n_parameters"] for r in attack_recs} == {counted}
    assert counted != 1_000_000  # the registry's nominal size is "1m"
    import shutil

    shutil.copytree(demo_results, tmp_path / "results")
    publish(tmp_path / "results")
    report = build_site(tmp_path / "results", tmp_path / "site")
    page = (report.out_dir / "target" / "demo-neox-tiny.html").read_text()
    assert f"{counted:,} parameters (counted from the loaded model)" in page


# --- diagnostics from MEMBENCH_HOME -------------------------------------------------------------

def test_the_gate_copies_diagnostics_under_membench_home_into_a_results_folder_without_them(local_home, tmp_path):
    rec, uids, scores = synthetic_record("synthetic/diag", "pythia-160m", "loss", n=60)
    write(tmp_path / "results", rec, uids, scores)
    rec2, uids2, scores2 = synthetic_record("synthetic/other", "pythia-160m", "loss", n=60)
    write(tmp_path / "results", rec2, uids2, scores2)
    for split_id, content_hash in (("synthetic/diag", rec["split"]["content_hash"]), ("synthetic/other", "0" * 64)):
        path = local_home / "diagnostics" / (split_id + ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"subject": {"id": split_id, "content_hash": content_hash}, "blind_auc": 0.77,
                                    "blind_auc_ci95": [0.7, 0.84], "verdict": "shifted"}))
    before = build_site(tmp_path / "results", tmp_path / "site0")  # the site never reads MEMBENCH_HOME
    assert before.n_results == 0
    copied = publish(tmp_path / "results").diagnostics
    assert [p.relative_to(tmp_path / "results").as_posix() for p in copied] == ["_diagnostics/synthetic/diag.json"]
    report = build_site(tmp_path / "results", tmp_path / "site")
    page = (report.out_dir / "split" / "synthetic-diag.html").read_text()
    assert "best blind-baseline AUC <strong>0.77</strong>" in page and "verdict shifted" in page
    other = (report.out_dir / "split" / "synthetic-other.html").read_text()  # another split's content: ignored
    assert "not diagnosed" in other and "0.77" not in other


def test_the_split_page_keeps_the_tokenizer_baseline_of_the_card_and_pins_the_rest(tmp_path):
    """The card's blind-baseline table is dropped from the split page (its text-only baselines are
    rows of the results table), but the tokenizer baseline is no result row: it stays (issue 24.2)."""
    from markdown_it import MarkdownIt

    from benchmark.site.pages import card_html

    card = tmp_path / "local" / "toy.md"
    card.parent.mkdir(parents=True)
    card.write_text("## Diagnostics\n\n| blind baseline | AUC | 95% CI | TPR at 1% FPR |\n|---|---|---|---|\n"
                    "| `blind_bow`: TF-IDF | 0.419 | [0.362, 0.474] | 0.015 |\n"
                    "| `blind_tokenizer`: tokenizer `c7796ddd6336` of `demo/neox-tiny` | 0.545 | [0.489, 0.599] | 0.015 |\n"
                    "\nAfter the table.\n")
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    page = str(card_html(tmp_path, "local/toy", md))
    assert "blind_tokenizer" in page and "0.545" in page and "[0.489, 0.599]" in page
    assert "blind_bow" not in page and "0.419" not in page
    assert "pinned at the top of the results table" in page and "After the table." in page
    card.write_text("| blind baseline | AUC |\n|---|---|\n| `blind_bow` | 0.419 |\n")
    page = str(card_html(tmp_path, "local/toy", md))
    assert "0.419" not in page and "tokenizer baseline" not in page and "pinned at the top" in page
