"""The static site: pages, figures, tables, downloads, escaping, refused files, a pure reader."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.results import write
from benchmark.results.gate import Catalog, publish
from synthetic_results import synthetic_record
from benchmark.site import build_site
from benchmark.site.model import rank_groups
from site_helpers import MODEL_FREE, PYTHIA_1_4B_COUNTED, REPO, XSS, make_results, result_files


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    cards = tmp_path_factory.mktemp("cards")
    (cards / "wikimia").mkdir()
    (cards / "wikimia" / "32.md").write_text(
        "# WikiMIA length 32\n\n<!-- membench:begin counts -->\nEvents after 2023 are non-members.\n"
        "<!-- membench:end counts -->\n\n<b onclick=x()>raw html</b>\n\n"
        "| count | value |\n|---|---|\n| members | 387 |\n\n"
        "## Diagnostics (latest)\n\n<!-- membench:begin diagnostics -->\n**Verdict: shifted**\n\n"
        "| blind baseline | AUC | 95% CI | TPR at 1% FPR |\n|---|---|---|---|\n"
        "| `bag_of_words`: TF-IDF | 0.985 | [0.97, 0.995] | 0.6 |\n\n"
        "| length (words) | median |\n|---|---|\n| members | 31 |\n<!-- membench:end diagnostics -->\n"
    )
    return cards


@pytest.fixture(scope="module")
def site(results, cards, tmp_path_factory):
    return build_site(results, tmp_path_factory.mktemp("site") / "build", cards_dir=cards)


def _pages(site):
    return {p.relative_to(site.out_dir).as_posix(): p.read_text() for p in site.out_dir.rglob("*.html")}


def _section(html: str, sid: str) -> str:
    return html.split(f'id="{sid}"')[1].split("</section>")[0]


def test_every_page_exists(site):
    pages = _pages(site)
    assert {"index.html", "scorers.html", "split/wikimia-32.html", "split/control-wikimia_vs_wikimia24.html",
            "scorer/loss.html", "scorer/blind_bow.html", "target/pythia-160m.html", "target/pythia-1.4b.html"} <= set(pages)
    assert not site.rejected and site.n_results == 3 + 3 * 4 * 3 + 2  # blind, attacks, two submissions
    assert json.loads((site.out_dir / "schema" / "result.schema.json").read_text())["title"].startswith("membench")


def _panel(html: str, split_id: str) -> str:
    """The overview panel (an SVG) of one split on the overview page."""
    part = html.split(f'>{split_id}</a>', 1)[1]
    return part.split("<svg", 1)[1].split("</svg>")[0]


def test_overview_figure_plots_each_scorer_beside_the_split_blind_auc(site):
    html = (site.out_dir / "index.html").read_text()
    figure = _section(html, "section-pretraining").split('id="figure-pretraining"')[1].split('class="note legend"')[0]
    assert figure.count('class="plot overview"') == 2  # one panel per pretraining split
    panel = _panel(figure, "wikimia/32")
    # the diagnostics' best blind AUC as published (0.985, interval [0.97, 0.995]: two decimals), drawn as a
    # line and band
    assert 'data-blind-auc="0.9800"' in panel
    assert 'class="blind-band"' in panel and 'class="blind-line"' in panel
    rows = re.findall(r'data-auc="([0-9.]+)" data-vs-blind="([a-z/-]+)"', panel)
    # loss, zlib, min_k and the submission on the primary target (pythia-160m: the most results
    # there), and the model-free submission as a hollow point with no comparison
    assert len(rows) == 5 and "on pythia-160m<" in figure.split('>wikimia/32</a>')[1].split("<svg")[0]
    states = [s for _, s in rows]
    assert states.count("n/a") == 1  # the model-free submission
    for auc, state in rows:
        if state != "n/a":
            assert state == "not-above"  # every interval reaches below 0.98 on this shifted split
    assert re.search(r'<circle[^>]+fill="#fff"', panel)  # hollow marker for the model-free scorer
    # on the other split, with only the blind_bow record, the line is that record's AUC
    other = _panel(figure, "mimir/wikipedia_en/ngram_13_0.8")
    assert "data-blind-auc" in other and "data-vs-blind=\"above\"" in other


def test_overview_figure_classifies_against_the_blind_auc_from_the_intervals(site, results):
    """A point is 'above' exactly when its published interval's lower bound clears the published
    blind AUC (every value compared is the one shown)."""
    from benchmark.site.precision import decimals_for

    m = json.loads(next(p for p in result_files(results)
                        if "mimir" in p.as_posix() and json.loads(p.read_text())["scorer"]["name"] == "blind_bow").read_text())["metrics"]
    blind = round(m["auc"], decimals_for(*m["auc_ci95"]))
    data = json.loads((site.out_dir / "data" / "split-mimir-wikipedia_en-ngram_13_0.8.json").read_text())["rows"]
    lows = {(r["scorer"], r["target"]): r["vs_blind"] for r in data if r["kind"] == "attack"}
    for path in result_files(results):
        rec = json.loads(path.read_text())
        if rec["split"]["id"] != "mimir/wikipedia_en/ngram_13_0.8" or rec["scorer"]["kind"] != "attack":
            continue
        label = rec["target"]["id"] + ("" if rec["target"]["revision"] == "main" else "@" + rec["target"]["revision"])
        lo, hi = rec["metrics"]["auc_ci95"]
        expected = "above" if round(lo, decimals_for(lo, hi)) > blind else "not above"
        assert lows[(rec["scorer"]["name"], label)] == expected


def test_verdict_badges_track_tabs_and_one_table_shown_per_track(site):
    html = (site.out_dir / "index.html").read_text()
    assert re.search(r'<span class="badge verdict shifted"[^>]*>shifted</span>', html)
    assert re.search(r'<span class="badge verdict not-diagnosed"[^>]*>not diagnosed</span>', html)
    # one tab per track; each track's three tables are tab panels of one group (first shown by the script)
    assert re.findall(r'data-tab="section-([a-z]+)"', html) == ["pretraining", "control"]
    for prefix in ("pretraining", "control"):
        panels = re.findall(rf'class="tab-panel" data-tab-group="{prefix}-tables" id="panel-([a-z-]+)"', html)
        assert panels == [f"track-{prefix}", f"matrix-{prefix}", f"means-{prefix}"]
    pinned = html.split('id="track-pretraining"')[1].split('<tbody class="ranked">')[0]
    assert "blind_bow" in pinned and 'class="blind"' in pinned


def test_split_page_order_verdict_results_card_and_blind_baselines_once(site):
    html = (site.out_dir / "split" / "wikimia-32.html").read_text()
    order = [html.index(f'id="{s}"') for s in ("verdict", "results", "card")]
    assert order == sorted(order)
    verdict = _section(html, "verdict")
    assert "shifted" in verdict and "<strong>0.98</strong>" in verdict and 'class="plot overview"' in verdict
    # every blind baseline once: pinned on the results table (records and diagnostics-only ones),
    # not again in the data card
    rows = re.findall(r"<tr id=.*?</tr>", html, re.S)
    for name in ("bag_of_words", "date_detection", "blind_bow"):
        assert sum(name in r for r in rows) == 1, name
    pinned = _section(html, "results").split('<tbody class="ranked">')[0]
    assert "date_detection" in pinned and "bag_of_words" in pinned and "blind_bow" in pinned
    card = _section(html, "card")
    assert "| blind baseline" not in card and "<td>31</td>" in card  # the other card tables stay
    assert "<table>" in card and "<td>387</td>" in card
    assert "<b onclick" not in html and "&lt;b onclick=x()&gt;" in html  # raw HTML in a card is text
    assert "Events after 2023" in html and "membench:begin" not in html  # block markers are dropped
    assert "@inproceedings{shi2024detecting" in html
    assert "control/wikimia_vs_wikimia24" in _section(html, "controls")
    undiagnosed = (site.out_dir / "split" / "mimir-wikipedia_en-ngram_13_0.8.html").read_text()
    assert "not diagnosed" in undiagnosed and "@inproceedings{duan2024membership" in undiagnosed


def test_public_split_pages_say_their_labels_are_public(site):
    for name, html in _pages(site).items():
        if name.startswith("split/"):
            assert "labels of this split are <strong>public</strong>" in html, name
            assert "could embed them" in html


def _docstring(path):
    return ast.get_docstring(ast.parse((REPO / path).read_text()))


def test_scorer_page_paper_name_citation_and_exact_docstring_definition(site):
    html = (site.out_dir / "scorer" / "loss.html").read_text()  # the id stays the page name
    assert "<h1>LOSS" in html and "Yeom et al. 2018, CSF 2018" in html and "<code>loss</code>" in html
    definition = _section(html, "definition")
    expected = _docstring("benchmark/attacks/loss.py")
    assert "<pre class=\"definition\">" + expected.replace("<", "&lt;").replace(">", "&gt;") in definition
    assert "@inproceedings{yeom2018privacy" in definition
    mink = (site.out_dir / "scorer" / "min_k.html").read_text()
    assert "<h1>Min-K% Prob" in mink and "Min-K%++" not in _section(mink, "definition").split("BibTeX")[0]
    index = (site.out_dir / "index.html").read_text()
    assert '>Min-K% Prob</a>' in index and '<code class="id">min_k</code>' in index


def test_the_gate_reads_names_and_definitions_from_the_scorer_classes():
    facts = Catalog().facts
    assert facts["min_k_plus_plus"].title == "Min-K%++" and facts["recall"].title == "ReCaLL"
    assert facts["dc_pdd"].title == "DC-PDD" and facts["min_k"].defaults == {"k": 0.2}
    assert facts["min_k_plus_plus"].definition.startswith("Min-K%++:")
    assert facts["min_k"].definition.startswith("Min-K% Prob:") and "z_t" not in facts["min_k"].definition
    assert "blind_bow" in facts and facts["blind_bow"].definition.startswith("TF-IDF")
    titles = [f.title for f in facts.values()]
    assert len(titles) == len(set(titles))  # two classes never share a title


def test_site_build_imports_none_of_suite_targets_attacks_features_or_diagnostics(results, tmp_path):
    """The site reads JSON only: building it loads no pipeline stage (nor torch)."""
    code = (f"from benchmark.site import build_site\nassert build_site({str(results)!r}, {str(tmp_path / 'site')!r}).n_results\n"
            "import sys\nprint([m for m in sys.modules if m.split('.')[0] == 'torch' or m.split('.')[:2] in "
            "[['benchmark', s] for s in ('suite', 'targets', 'attacks', 'features', 'diagnostics', 'evaluate')]])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _every_byte(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_one_results_folder_gives_byte_identical_sites_under_any_membench_home(results, cards, tmp_path):
    """Built twice from one results folder, once under an empty MEMBENCH_HOME and once under the
    repository's (which holds materialized splits, diagnostics and a recompute cache): every byte
    of the two build folders is the same."""
    homes = {"empty": tmp_path / "empty-home", "full": REPO / ".membench"}
    homes["empty"].mkdir()
    for name, home in homes.items():
        code = (f"from benchmark.site import build_site\n"
                f"build_site({str(results)!r}, {str(tmp_path / name)!r}, cards_dir={str(cards)!r})")
        env = {**__import__("os").environ, "MEMBENCH_HOME": str(home)}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
    a, b = _every_byte(tmp_path / "empty"), _every_byte(tmp_path / "full")
    assert a.keys() == b.keys() and len(a) > 50
    assert [k for k in a if a[k] != b[k]] == []
    assert list(homes["empty"].iterdir()) == []  # the build wrote nothing there either


def test_records_not_through_the_gate_or_changed_after_it_are_refused(tmp_path):
    root = tmp_path / "results"
    rec, uids, scores = synthetic_record("synthetic/g", "pythia-160m", "loss", n=60)
    fresh = write(root, rec, uids, scores)
    report = build_site(root, tmp_path / "site")
    assert report.n_results == 0 and [r.field for r in report.rejected] == ["gate"]
    assert "not through the publication gate: run `membench results validate" in report.rejected[0].message
    publish(root)
    assert build_site(root, tmp_path / "site").n_results == 1
    stamped = json.loads(fresh.read_text())
    stamped["metrics"]["auc"] = 0.99  # a hand edit after the gate
    fresh.write_text(json.dumps(stamped))
    report = build_site(root, tmp_path / "site")
    assert report.n_results == 0 and [r.field for r in report.rejected] == ["gate.content_sha256"]
    html = report.index.read_text()
    assert "changed after the publication gate" in html and str(root) not in html  # no host path on a page


def test_loglog_roc_axes_stop_at_one_over_the_nonmembers(site):
    html = (site.out_dir / "scorer" / "loss.html").read_text()
    roc = _section(html, "roc")
    assert roc.count("<svg") == 2 * 3  # linear and log-log for each of three splits
    loglog = re.findall(r'<svg[^>]*aria-label="[^"]*\(log-log\)"[^>]*data-fpr-min="([^"]+)" data-tpr-min="([^"]+)"', roc)
    assert len(loglog) == 3
    for fpr_min, tpr_min in loglog:
        assert float(fpr_min) == pytest.approx(1 / 60, rel=1e-5) == float(tpr_min)  # 60 + 60 samples
    assert ">1/60</text>" in roc  # the axis is labelled at its floor, nothing below it
    assert not re.search(r">0\.001</text>", roc)


def test_no_rank_group_or_blind_excess_for_model_free_scorers_or_control_splits(site):
    rows = json.loads((site.out_dir / "data" / "track-pretraining.json").read_text())["rows"]
    model_free = [r for r in rows if r["scorer"] == MODEL_FREE]
    assert model_free and all(r["rank_group"] == r["auc_minus_blind"] == "not applicable (model-free scorer)"
                              for r in model_free)
    attacks = [r for r in rows if r["kind"] == "attack"]
    assert all(isinstance(r["rank_group"], int) and isinstance(r["auc_minus_blind"], float) for r in attacks)
    control = json.loads((site.out_dir / "data" / "track-control.json").read_text())["rows"]
    assert all(r["rank_group"] == "not applicable (control split)" for r in control if r["kind"] == "attack")
    csv = pd.read_csv(site.out_dir / "data" / "track-control.csv")
    assert set(csv.loc[csv["kind"] == "attack", "auc_minus_blind"]) == {"not applicable (control split)"}
    html = (site.out_dir / "split" / "control-wikimia_vs_wikimia24.html").read_text()
    ranked = _section(html, "results").split('<tbody class="ranked">')[1]
    assert "above +" not in ranked and ranked.count('title="not applicable (control split)">n/a<') >= 2 * 12


def test_target_page_shows_counted_parameters_not_the_nominal_size(site):
    counted = (site.out_dir / "target" / "pythia-1.4b.html").read_text()
    assert f"{PYTHIA_1_4B_COUNTED:,} parameters (counted from the loaded model)" in counted
    assert "1,400,000,000" not in counted
    older = (site.out_dir / "target" / "pythia-160m.html").read_text()
    assert "not counted in these records (nominal size 160m" in older


def test_per_sample_scores_download_from_every_row(site, results):
    html = (site.out_dir / "index.html").read_text()
    links = set(re.findall(r'href="(data/scores/[0-9a-f]{64}\.parquet)" download', html))
    records = [json.loads(p.read_text()) for p in result_files(results)]
    assert len(links) == len({r["per_sample"]["sha256"] for r in records})
    for link in links:
        path = site.out_dir / link
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
        assert list(pd.read_parquet(path).columns) == ["uid", "score"]
    rows = json.loads((site.out_dir / "data" / "track-pretraining.json").read_text())["rows"]
    assert all((site.out_dir / r["per_sample_scores"]).is_file() for r in rows)


def test_every_table_has_csv_json_latex_markdown_and_row_permalinks(site):
    for name, html in _pages(site).items():
        for tid in re.findall(r'<table class="sortable results" id="([^"]+)"', html):
            csv = pd.read_csv(site.out_dir / "data" / f"{tid}.csv")
            payload = json.loads((site.out_dir / "data" / f"{tid}.json").read_text())
            tex = (site.out_dir / "data" / f"{tid}.tex").read_text()
            md = (site.out_dir / "data" / f"{tid}.md").read_text()
            n_rows = html.split(f'id="{tid}"')[1].split("</table>")[0].count("<tr id=")
            assert len(csv) == len(payload["rows"]) == n_rows, (name, tid)
            assert tex.count("\\\\\n") == n_rows + 1 and "\\begin{tabular}" in tex  # header + rows
            assert md.count("\n| ") == n_rows + 1
            for f in (f"{tid}.csv", f"{tid}.json", f"{tid}.tex", f"{tid}.md"):
                assert f'data/{f}" download' in html
            if n_rows:
                page, anchor = payload["rows"][0]["permalink"].split("#")
                assert page == name and f'id="{anchor}"' in html
    track = pd.read_csv(site.out_dir / "data" / "track-pretraining.csv")
    assert {"auc", "auc_ci95_lo", "auc_ci95_hi", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr", "rank_group"} <= set(track.columns)


def test_latex_and_markdown_exports_escape_names(site):
    tex = (site.out_dir / "data" / "track-pretraining.tex").read_text()
    md = (site.out_dir / "data" / "track-pretraining.md").read_text()
    assert "<script>alert" in tex  # LaTeX has no HTML to fear; its own specials are escaped
    assert "min\\_k" not in tex or "Min-K\\% Prob" in tex
    assert "Min-K\\% Prob" in tex and "\\caption{pretraining track" in tex
    assert "| Min-K% Prob |" in md and md.splitlines()[2].startswith("| scorer | target | split | AUC")


def test_unresolvable_values_are_the_word_in_downloads(site):
    csv = pd.read_csv(site.out_dir / "data" / "track-pretraining.csv")
    assert set(csv["tpr_at_0.1pct_fpr"]) == {"unresolvable"}  # 60 non-members cannot resolve 0.1% FPR
    assert not csv.isna().any().any()


def test_script_in_scorer_name_and_description_renders_as_text(site):
    pages = _pages(site)
    for name, html in pages.items():
        assert "<script>alert" not in html, name
        assert "<img src=x" not in html, name
    sub = next(h for n, h in pages.items() if n.startswith("scorer/script"))
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in sub
    submission = _section(sub, "submission")
    assert "description" in submission and "threat_model" in submission and "Mallory &lt;img" in submission
    for f in (site.out_dir / "data").glob("*.json"):
        json.loads(f.read_text())  # downloads stay valid JSON whatever the names hold
    rows = json.loads((site.out_dir / "data" / "track-pretraining.json").read_text())["rows"]
    assert XSS in {r["scorer"] for r in rows}


def test_tables_readable_without_javascript(site):
    html = (site.out_dir / "index.html").read_text()
    # every row is in the HTML itself; the filter box and the tabs are hidden until the script runs
    assert html.count("<tr id=") > 20 and " hidden" not in html
    css = (site.out_dir / "static" / "style.css").read_text()
    assert 'class="js-only"' in html and "html.js .js-only" in css and "html.js .tabs" in css


def test_malformed_result_is_refused_and_the_build_carries_on(results, tmp_path, capsys):
    bad_root = tmp_path / "results"
    shutil.copytree(results, bad_root)
    bad = result_files(bad_root)[0]
    rec = json.loads(bad.read_text())
    rec["metrics"]["auc"] = "very high"
    bad.write_text(json.dumps(rec))
    report = build_site(bad_root, tmp_path / "site")
    assert [(r.path, r.field) for r in report.rejected] == [(bad, "metrics.auc")]
    assert report.n_results == len(result_files(bad_root)) - 1
    html = report.index.read_text()
    # pages name a refused file relative to the results folder, its key hash masked (a key holds the
    # split's content hash, which on a private split depends on the labels)
    shown = bad.relative_to(bad_root).as_posix().rsplit("-", 1)[0] + "-&lt;key&gt;.json"
    assert "Refused result files (1)" in html and shown in html and "metrics.auc" in html
    assert str(bad) not in html and bad.name not in html
    assert main(["leaderboard", "build", "--results", str(bad_root), "--out", str(tmp_path / "s2")]) == 0
    out = capsys.readouterr().out
    assert f"refused (left out): {bad}: field 'metrics.auc'" in out


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_strict_build_that_fails_writes_nothing(results, tmp_path, capsys):
    bad_root = tmp_path / "results"
    shutil.copytree(results, bad_root)
    bad = result_files(bad_root)[0]
    bad.write_text("{not json")
    fresh = tmp_path / "fresh"
    assert main(["leaderboard", "build", "--results", str(bad_root), "--out", str(fresh), "--strict", "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["written"] is False and payload["rejected"][0]["path"] == str(bad)
    assert not fresh.exists() and not list(tmp_path.glob(".fresh*"))
    # an existing site stays exactly as it was
    old = tmp_path / "old"
    build_site(results, old)
    before = _tree(old)
    assert main(["leaderboard", "build", "--results", str(bad_root), "--out", str(old), "--strict"]) == 1
    assert "nothing written" in capsys.readouterr().out
    assert _tree(old) == before


def test_a_build_that_fails_midway_leaves_the_old_site(results, tmp_path, monkeypatch):
    from benchmark.site import pages

    out = tmp_path / "site"
    build_site(results, out)
    before = _tree(out)

    def boom(self, scorer):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pages.Renderer, "scorer", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_site(results, out)
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no staging folder left behind


def test_two_builds_into_one_folder_at_once_both_finish_whole(results, tmp_path):
    import threading

    out, errors = tmp_path / "site", []

    def build():
        try:
            build_site(results, out)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (out / "index.html").is_file() and (out / ".membench-site.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["site"]


def test_build_refuses_an_output_folder_that_is_not_a_site(results, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("keep me")
    assert main(["leaderboard", "build", "--results", str(results), "--out", str(folder)]) == 2
    assert "not a membench site folder (it holds thesis.tex)" in capsys.readouterr().err
    assert (folder / "thesis.tex").read_text() == "keep me"


def test_builder_and_server_default_to_the_same_folders(monkeypatch, tmp_path, results):
    from benchmark import home
    from benchmark.commands import leaderboard, serve
    from benchmark.site import default_folders

    assert default_folders() == (home.results_dir(), home.BUILD_DIR)
    shutil.copytree(results, tmp_path / "home" / "results")
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(home, "BUILD_DIR", tmp_path / "build")
    seen = {}
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(site=app.state.site_dir, results=app.state.results_dir))
    assert main(["leaderboard", "build", "--json"]) == 0
    assert (tmp_path / "build" / "index.html").is_file()
    assert main(["serve"]) == 0
    assert seen == {"site": tmp_path / "build", "results": tmp_path / "home" / "results"}
    assert leaderboard and serve


def test_build_into_a_served_folder_says_so_and_refuses_other_results(results, tmp_path, capsys):
    from benchmark.site.serving import mark_served

    site = tmp_path / "site"
    build_site(results, site)
    mark_served(site, url="http://127.0.0.1:9999/", results_dir=results)  # this process plays the server
    assert main(["leaderboard", "build", "--results", str(results), "--out", str(site)]) == 0
    out = capsys.readouterr().out
    assert f"note: {site} is served by `membench serve` (pid " in out and "http://127.0.0.1:9999/" in out
    assert (site / ".membench-serving.json").is_file()  # the marker moved to the new build
    other = tmp_path / "other"
    shutil.copytree(results, other)
    assert main(["leaderboard", "build", "--results", str(other), "--out", str(site)]) == 2
    err = capsys.readouterr().err
    assert "is served by `membench serve`" in err and "--force" in err
    assert main(["leaderboard", "build", "--results", str(other), "--out", str(site), "--force"]) == 0


def test_rank_groups_follow_interval_overlap():
    rows = [
        {"blind": False, "auc": 0.90, "auc_lo": 0.85, "auc_hi": 0.95},
        {"blind": False, "auc": 0.86, "auc_lo": 0.80, "auc_hi": 0.91},  # overlaps the leader
        {"blind": False, "auc": 0.70, "auc_lo": 0.62, "auc_hi": 0.78},  # does not: new group
        {"blind": False, "auc": 0.66, "auc_lo": 0.60, "auc_hi": 0.72},
        {"blind": True, "auc": 0.99, "auc_lo": 0.98, "auc_hi": 1.0},  # never ranked
        {"blind": False, "model_free": True, "auc": 0.95, "auc_lo": 0.9, "auc_hi": 1.0},  # never ranked
    ]
    rank_groups(rows)
    assert [r.get("rank") for r in rows] == [1, 1, 2, 2, None, None]


def test_site_build_benchmark_script_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "site_build.py"), "--results", "30", "--samples", "60", "--json",
         "--keep", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    payload = json.loads(out.stdout)
    assert payload["result_files"] == payload["accepted"] == 30 and payload["refused"] == 0
    assert payload["build_s"] > 0 and (tmp_path / "site" / "index.html").is_file()


def test_settings_of_one_scorer_are_named_by_their_parameters(tmp_path):
    root = tmp_path / "results"
    for split, k in (("synthetic/a", 0.2), ("synthetic/b", 0.1)):
        rec, uids, scores = synthetic_record(split, "pythia-160m", "min_k", n=60)
        rec["scorer"]["params"] = {"k": k}
        write(root, rec, uids, scores)
    publish(root)
    report = build_site(root, tmp_path / "site")
    default = json.loads((report.out_dir / "data" / "scorer-min_k.json").read_text())["rows"]
    setting = json.loads((report.out_dir / "data" / "scorer-min_k--k-0.1.json").read_text())["rows"]
    assert [(r["split"], r["scorer_name"], r["setting"]) for r in default] == [("synthetic/a", "Min-K% Prob", "default")]
    assert [(r["split"], r["scorer_name"], r["setting"]) for r in setting] == [
        ("synthetic/b", "Min-K% Prob (k=0.1)", "k=0.1")]
    assert setting[0]["permalink"].endswith("--min_k--k-0.1")
    page = (report.out_dir / "scorer" / "min_k--k-0.1.html").read_text()
    assert "<h1>Min-K% Prob (k=0.1)" in page and "A setting of <strong>Min-K% Prob</strong>" in page
    assert "Min-K% Prob: the mean of the lowest" in page  # the base method's definition on the setting's page
