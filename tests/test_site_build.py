"""The static site: pages, tables, downloads, escaping, refused files, no torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.site import build_site
from benchmark.site.model import rank_groups
from site_helpers import REPO, XSS, make_results, result_files


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def site(results, tmp_path_factory):
    cards = tmp_path_factory.mktemp("cards")
    (cards / "wikimia").mkdir()
    (cards / "wikimia" / "32.md").write_text(
        "# WikiMIA length 32\n\n<!-- membench:begin counts -->\nEvents after 2023 are non-members.\n"
        "<!-- membench:end counts -->\n\n<b onclick=x()>raw html</b>\n\n"
        "| count | value |\n|---|---|\n| members | 387 |\n"
    )
    return build_site(results, tmp_path_factory.mktemp("site"), cards_dir=cards)


def _pages(site):
    return {p.relative_to(site.out_dir).as_posix(): p.read_text() for p in site.out_dir.rglob("*.html")}


def test_every_page_exists(site):
    pages = _pages(site)
    assert {"index.html", "split/wikimia-32.html", "split/control-wikimia_vs_wikimia24.html",
            "scorer/loss.html", "scorer/blind_bow.html", "target/pythia-160m.html", "target/pythia-1.4b.html"} <= set(pages)
    assert not site.rejected and site.n_results == 3 + 3 * 4 * 3 + 1  # blind, attacks, the submission
    assert json.loads((site.out_dir / "schema" / "result.schema.json").read_text())["title"].startswith("membench")


def test_overview_has_tracks_rank_groups_means_and_footer(site):
    html = (site.out_dir / "index.html").read_text()
    for table in ("means-pretraining", "track-pretraining", "means-control", "track-control"):
        assert f'id="{table}"' in html
    assert "rank group" in html and "mean AUC" in html and ">splits<" in html
    assert "unresolvable" in html  # 60 non-members cannot resolve TPR at 1% FPR
    assert re.search(r"suite v\S* \(registry [0-9a-f]{10}\)", html)
    assert "last update 2026-01-01" in html  # the newest result's date, not the build date
    # blind baselines are pinned above the sortable rows
    pinned = html.split('id="track-pretraining"')[1].split('<tbody class="ranked">')[0]
    assert "blind_bow" in pinned and 'class="blind"' in pinned


def test_every_table_has_csv_and_json_downloads_and_row_permalinks(site):
    for name, html in _pages(site).items():
        for tid in re.findall(r'<table class="sortable results" id="([^"]+)"', html):
            csv = pd.read_csv(site.out_dir / "data" / f"{tid}.csv")
            payload = json.loads((site.out_dir / "data" / f"{tid}.json").read_text())
            n_rows = html.split(f'id="{tid}"')[1].split("</table>")[0].count("<tr id=")
            assert len(csv) == len(payload["rows"]) == n_rows, (name, tid)
            if n_rows:
                link = payload["rows"][0]["permalink"]
                page, anchor = link.split("#")
                assert page == name and f'id="{anchor}"' in html
    track = pd.read_csv(site.out_dir / "data" / "track-pretraining.csv")
    assert {"auc", "auc_ci95_lo", "auc_ci95_hi", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr", "rank_group"} <= set(track.columns)


def test_split_page_order_diagnostics_card_and_bibtex(site):
    html = (site.out_dir / "split" / "wikimia-32.html").read_text()
    order = [html.index(f'id="{s}"') for s in ("diagnostics", "controls", "card", "results")]
    assert order == sorted(order)
    assert "shifted" in html and "0.985" in html and "date_detection" in html
    assert "<table>" in html and "<td>387</td>" in html  # the card's markdown table
    assert "<b onclick" not in html and "&lt;b onclick=x()&gt;" in html  # raw HTML in a card is text
    assert "Events after 2023" in html and "membench:begin" not in html  # block markers are dropped
    assert "@inproceedings{shi2024detecting" in html
    assert "control/wikimia_vs_wikimia24" in html.split('id="controls"')[1].split('id="card"')[0]
    undiagnosed = (site.out_dir / "split" / "mimir-wikipedia_en-ngram_13_0.8.html").read_text()
    assert "not diagnosed" in undiagnosed and "@inproceedings{duan2024membership" in undiagnosed


def test_scorer_page_roc_size_checkpoint_shift_bibtex(site):
    html = (site.out_dir / "scorer" / "loss.html").read_text()
    roc = html.split('id="roc"')[1].split("</section>")[0]
    assert roc.count("<svg") == 2 * 3  # linear and log-log for each of three splits
    assert "(log-log)" in roc and "false-positive rate (log)" in roc
    assert "<svg" in html.split('id="size"')[1].split("</section>")[0]  # pythia-160m and -1.4b
    step = html.split('id="step"')[1].split("</section>")[0]
    assert "<svg" in step and "pythia-160m on wikimia/32" in step  # step1000 and step99000
    assert "control/wikimia_vs_wikimia24" in html.split('id="shift"')[1].split("</section>")[0]
    assert "@inproceedings{yeom2018privacy" in html
    assert re.search(r"code SHA-256 <code>[0-9a-f]{64}</code>", html)


def test_script_in_scorer_name_and_description_renders_as_text(site):
    pages = _pages(site)
    for name, html in pages.items():
        assert "<script>alert" not in html, name
        assert "<img src=x" not in html, name
    sub = next(h for n, h in pages.items() if n.startswith("scorer/script"))
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in sub
    submission = sub.split('id="submission"')[1].split("</section>")[0]
    assert "description" in submission and "threat_model" in submission and "Mallory &lt;img" in submission
    for f in (site.out_dir / "data").glob("*.json"):
        json.loads(f.read_text())  # downloads stay valid JSON whatever the names hold
    rows = json.loads((site.out_dir / "data" / "track-pretraining.json").read_text())["rows"]
    assert XSS in {r["scorer"] for r in rows}


def test_tables_readable_without_javascript(site):
    html = (site.out_dir / "index.html").read_text()
    # every row is in the HTML itself; the filter box is hidden until the script runs
    assert html.count("<tr id=") > 20
    assert 'class="js-only"' in html and "html.js .js-only" in (site.out_dir / "static" / "style.css").read_text()


def test_malformed_result_is_refused_and_the_build_carries_on(results, tmp_path, capsys):
    import shutil

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
    assert "Refused result files (1)" in html and str(bad) in html and "metrics.auc" in html
    # the CLI reports it too, naming the file and the field, and --strict fails on it
    assert main(["leaderboard", "build", "--results", str(bad_root), "--out", str(tmp_path / "s2")]) == 0
    out = capsys.readouterr().out
    assert f"refused (left out): {bad}: field 'metrics.auc'" in out
    assert main(["leaderboard", "build", "--results", str(bad_root), "--out", str(tmp_path / "s3"), "--strict", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["rejected"][0]["field"] == "metrics.auc"


def test_rank_groups_follow_interval_overlap():
    rows = [
        {"blind": False, "auc": 0.90, "auc_lo": 0.85, "auc_hi": 0.95},
        {"blind": False, "auc": 0.86, "auc_lo": 0.80, "auc_hi": 0.91},  # overlaps the leader
        {"blind": False, "auc": 0.70, "auc_lo": 0.62, "auc_hi": 0.78},  # does not: new group
        {"blind": False, "auc": 0.66, "auc_lo": 0.60, "auc_hi": 0.72},
        {"blind": True, "auc": 0.99, "auc_lo": 0.98, "auc_hi": 1.0},  # never ranked
    ]
    rank_groups(rows)
    assert [r.get("rank") for r in rows] == [1, 1, 2, 2, None]


def test_site_build_never_imports_torch(results, tmp_path):
    code = (
        "import sys; from benchmark.site import build_site; "
        f"r = build_site({str(results)!r}, {str(tmp_path / 'site')!r}); "
        "assert r.n_results > 0; "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
        "print('TORCH' if bad else 'NO-TORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "NO-TORCH"


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
