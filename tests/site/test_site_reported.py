"""Reported results on the site (issue 25 item 2): the values papers published beside the values
reproduced, reported-only rows marked and kept apart, a page per paper, the downloads, and a
private split compared on its published (rounded) values only.

The world: the shipped reported files (``leaderboard_site/results/_reported``) and synthetic
records that match three of their rows (LOSS and zlib on WikiMIA-32 x Pythia-2.8B, Min-K%++'s
own result file; the blind bag-of-words on WikiMIA-128, Das et al.'s analogue), with figures set
so that one lies inside its interval, one outside and one is an analogue; every other reported
row stays reported only.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from benchmark.results import ladder, published, reported, write
from benchmark.results.gate import publish
from synthetic_results import synthetic_record
from benchmark.site import build_site, collect
from benchmark.site.reported import PRESETS_FILE, presets_for, read_presets
from site_helpers import PUBLISHED, REPO

REV = "step143000"


def _with_metrics(rec: dict, auc: float, ci: list) -> dict:
    """A record whose AUC and interval are the given ones (the split is not materialized here, so
    the gate keeps them: it cannot recompute)."""
    rec["metrics"]["auc"], rec["metrics"]["auc_ci95"] = auc, ci
    return rec


def _write(root, split, target, scorer, auc, ci, *, revision=REV, kind="attack", private=False, seed=0, extra=None):
    rec, uids, scores = synthetic_record(split, target, scorer, revision=revision, kind=kind, n=120, seed=seed,
                                         family=split.split("/")[0], extra=extra)
    if private:
        rec["split"]["private"] = True
    write(root, _with_metrics(rec, auc, ci), uids, scores)


def make_world(root):
    shutil.copytree(PUBLISHED / "_reported", root / "_reported")
    # zhang2025minkpp printed LOSS 61.4 and zlib 62.1 on WikiMIA_length32 x Pythia-2.8B
    _write(root, "wikimia/32", "pythia-2.8b", "loss", 0.6234, [0.59, 0.65])  # 0.62 [0.59, 0.65]: 0.614 within
    _write(root, "wikimia/32", "pythia-2.8b", "zlib", 0.7012, [0.68, 0.72], seed=1)  # 0.70 [0.68, 0.72]: outside
    _write(root, "wikimia/32", "pythia-2.8b", "loss", 0.55, [0.50, 0.60], revision="step99000", seed=2)  # not paired
    # das2024blind printed bag-of-words AUC 99 on WikiMIA (membench: wikimia/128, blind_bow as analogue)
    _write(root, "wikimia/128", "none", "blind_bow", 0.97, [0.95, 0.99], revision=None, kind="blind_baseline", seed=3)
    report = publish(root)
    assert report.ok, [str(r) for r in report.rejected]
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = make_world(tmp_path_factory.mktemp("reported") / "results")
    site = build_site(root, tmp_path_factory.mktemp("site") / "build")
    return {"root": root, "site": site.out_dir, "data": collect(root)}


def _page(site, rel):
    return (site / rel).read_text(encoding="utf-8")


def _tbody(html, table_id, kind):
    table = html.split(f'id="{table_id}"')[1].split("</table>")[0]
    return table.split(f'<tbody class="{kind}">')[1].split("</tbody>")[0] if f'<tbody class="{kind}">' in table else ""


def _row(html, row_id):
    return html.split(f'<tr id="{row_id}"')[1].split("</tr>")[0]


def _text(fragment):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def _shipped_rows():
    rows, problems = reported.load_dir(PUBLISHED)
    assert problems == []
    return rows


def test_split_page_shows_reported_beside_reproduced_with_difference_and_interval(world):
    html = _page(world["site"], "split/wikimia-32.html")
    data = world["data"]
    rows = {(r["scorer"], r["revision"]): r for r in data.splits["wikimia/32"]["rows"]}
    loss, zlib, other = rows[("loss", REV)], rows[("zlib", REV)], rows[("loss", "step99000")]
    head = html.split('id="split-wikimia-32"')[1].split("</thead>")[0]
    labels = re.findall(r"<th[^>]*>([^<]+)</th>", head)
    assert labels.index("reported") == labels.index("AUC [95% CI]") + 1  # beside the reproduced value

    cell = _text(_row(html, f"split-wikimia-32--{loss['anchor']}"))
    assert "0.62 [0.59, 0.65]" in cell and "0.614" in cell and "+0.006" in cell and "within" in cell
    assert "zhang2025minkpp" in cell
    cell = _text(_row(html, f"split-wikimia-32--{zlib['anchor']}"))
    assert "0.70 [0.68, 0.72]" in cell and "0.621" in cell and "+0.079" in cell and "outside" in cell
    assert "0.614" not in _text(_row(html, f"split-wikimia-32--{other['anchor']}"))  # another revision: no pair
    # each value links its row on the paper's page, and that row exists there
    link = re.search(r'href="\.\./(paper/zhang2025minkpp\.html)#([^"]+)"', _row(html, f"split-wikimia-32--{loss['anchor']}"))
    assert link and f'id="{link.group(2)}"' in _page(world["site"], link.group(1))


def test_reported_only_rows_are_marked_and_kept_after_the_ranked_rows(world):
    html = _page(world["site"], "split/wikimia-32.html")
    ranked = _tbody(html, "split-wikimia-32", "ranked")
    apart = _tbody(html, "split-wikimia-32", "reported-only")
    assert html.index('<tbody class="ranked">') < html.index('<tbody class="reported-only">')
    assert "reported only" not in _text(ranked)  # no reported-only row among the ranked ones
    only = [r for r in world["data"].reported["rows"]
            if r["split_id"] == "wikimia/32" and r["status"] == "reported only"]
    assert len(only) > 40 and apart.count("<tr ") == len(only)
    assert apart.count('class="tag reported"') == len(only)
    first = _row(apart, re.search(r'<tr id="([^"]+)"', apart).group(1))
    assert 'data-sort="-1"' in first  # no AUC, no rank: never ranked among the reproduced rows
    # the blind baseline's reported-only TPR row stands on WikiMIA-128's page, its analogue AUC beside the record
    html128 = _page(world["site"], "split/wikimia-128.html")
    assert "analogue" in _text(html128) and "das2024blind" in html128
    assert "TPR@5%FPR" in _tbody(html128, "split-wikimia-128", "reported-only")


def test_target_and_scorer_pages_carry_reported_values_and_reported_only_rows(world):
    target = _page(world["site"], "target/pythia-2.8b.html")
    apart = _tbody(target, "target-pythia-2.8b", "reported-only")
    assert "mimir/wikipedia_en/ngram_13_0.8" in apart and "duan2024mimir" in apart  # no record here: reported only
    assert "+0.006" in _tbody(target, "target-pythia-2.8b", "ranked")
    slug = next(r["scorer_slug"] for r in world["data"].rows if r["scorer"] == "loss")
    scorer = _page(world["site"], f"scorer/{slug}.html")
    assert "+0.006" in scorer and "reported only" in scorer
    assert "mimir/arxiv/ngram_13_0.8" in _tbody(scorer, f"scorer-{slug}", "reported-only")


def test_each_paper_page_lists_every_row_of_its_file_with_status_and_source(world):
    rows = _shipped_rows()
    index = _page(world["site"], "index.html")
    section = index.split('id="reported"')[1].split("</section>")[0]
    for key in sorted({r.paper.key for r in rows}):
        assert f'href="paper/{key}.html"' in section  # linked from the overview
        html = _page(world["site"], f"paper/{key}.html")
        mine = [r for r in rows if r.paper.key == key]
        assert len(re.findall(r'<tr id="paper-[^"]+--p-', html)) == len(mine)
        for r in mine:
            assert r.source.address in html
        for table in {r.table for r in mine}:
            assert table.replace("<", "&lt;") in html
    counts = world["data"].reported["counts"]
    assert counts == {"reproduced": 1, "outside interval": 1, "analogue": 1, "reported only": len(rows) - 3}
    zhang = _page(world["site"], "paper/zhang2025minkpp.html")
    status = _text(zhang.split('id="status"')[1].split("</p>")[0])
    assert "reproduced 1" in status and "outside interval 1" in status
    # compared rows first, reported-only rows apart after them
    t = next(t for p in world["data"].reported["papers"] if p["key"] == "zhang2025minkpp" for t in p["tables"]
             if t["id"] == "results/WikiMIA_length32/pythia-2.8b.csv")
    assert [r["status"] for r in t["compared"]] == ["reproduced", "outside interval"]
    ranked = _tbody(zhang, t["table_id"], "ranked")
    assert ">reproduced<" in ranked and ">outside interval<" in ranked and "reported only" not in ranked


def test_a_reported_only_page_says_which_preset_reproduces_each_row(world):
    presets = read_presets()
    assert {p["name"] for p in presets} >= {"mimir-v5", "minkpp-wikimia32-pythia-2.8b"}
    rows = _shipped_rows()
    by = {(r.paper.key, r.target.name, r.split.name, r.column): r for r in rows}
    loss = next(r for r in rows if r.paper.key == "duan2024mimir" and r.column == "loss" and r.target.membench == "pythia-1.4b")
    assert presets_for(loss, presets) == ["mimir-v5"]
    gpt2 = next(r for r in rows if r.paper.key == "duan2024mimir" and r.attack.reference == "gpt2")
    assert presets_for(gpt2, presets) == []  # the reference model is not a membench target
    assert len(by) == len(rows)
    html = _page(world["site"], "paper/duan2024mimir.html")
    assert "membench grid --preset mimir-v5 --plan" in html and "membench grid --preset mimir-v5-neighborhood" in html
    assert "None of these values is reproduced" in html
    assert "reference model gpt2 is not a membench target" in html
    # the site reads the grid's own preset file
    from benchmark.grid.presets import PRESETS_FILE as GRID_PRESETS

    assert PRESETS_FILE == GRID_PRESETS


def test_reported_values_are_in_every_download(world):
    data_dir = world["site"] / "data"
    split_csv = pd.read_csv(data_dir / "split-wikimia-32.csv")
    assert {"reported", "row_kind"} <= set(split_csv.columns)
    mine = split_csv[split_csv["reported"].astype(str).str.contains("zhang2025minkpp: \\+0.006, within", regex=True)]
    assert len(mine) == 1 and mine.iloc[0]["row_kind"] == "membench"
    only = split_csv[split_csv["row_kind"] == "reported only"]
    assert len(only) > 40 and set(only["auc"]) == {"reported only"}
    assert all(src.startswith("zhang2025minkpp: https://") for src in only["reported_source"])
    assert "0.614" in (data_dir / "split-wikimia-32.tex").read_text() and "reported" in (data_dir / "split-wikimia-32.md").read_text()
    paper = next(p for p in world["data"].reported["papers"] if p["key"] == "zhang2025minkpp")
    t = next(t for t in paper["tables"] if t["id"] == "results/WikiMIA_length32/pythia-2.8b.csv")
    rows = json.loads((data_dir / f"{t['table_id']}.json").read_text())["rows"]
    assert len(rows) == len(t["rows"])
    loss = next(r for r in rows if r["scorer"] == "loss" and r["metric"] == "AUC")
    assert loss["reported"] == pytest.approx(0.614) and loss["reproduced"] == 0.62 and loss["within_interval"] is True
    assert loss["difference"] == pytest.approx(0.006) and loss["status"] == "reproduced"
    assert loss["source"].startswith("https://github.com/") and loss["where"]
    assert loss["permalink"].startswith("paper/zhang2025minkpp.html#")
    for ext in ("csv", "tex", "md"):
        assert "0.614" in (data_dir / f"{t['table_id']}.{ext}").read_text()
    papers = pd.read_csv(data_dir / "reported-papers.csv")
    assert set(papers["paper"]) == {"das2024blind", "duan2024mimir", "zhang2025minkpp"}


def _private_world(root, auc, ci):
    (root / "_reported").mkdir(parents=True)
    (root / "_reported" / "someone2024secret.yaml").write_text(json.dumps({
        "paper": {"key": "someone2024secret", "reference": "Someone. A secret. 2024.", "arxiv": "2401.00002"},
        "tables": [{"id": "Table 2", "title": "AUC on a private split", "scale": "fraction", "metric": {"kind": "auc"},
                    "source": {"url": "https://example.org/paper.pdf", "where": "Table 2"},
                    "split": {"name": "secret", "membench": "synthetic/secret"},
                    "columns": {"loss": {"header": "Loss", "attack": {"name": "Loss", "membench": "loss"}}},
                    "rows": [{"target": {"name": "Pythia-160M", "membench": "pythia-160m", "membench_revision": "main"},
                              "values": {"loss": "0.616"}}]}]}))
    _write(root, "synthetic/secret", "pythia-160m", "loss", auc, ci, revision="main", private=True)
    # the split is not materialized here: the Ladder keeps what an earlier gate run decided (its
    # public part's AUC, full precision, as the gate writes it); without it nothing is shown
    (path,) = (root / "synthetic" / "secret").rglob("loss-*.json")
    record = json.loads(path.read_text())
    record["ladder"] = {"rule": ladder.RULE, "subject": ladder.subject(record), "owner": ladder.MAINTAINERS,
                        "adaptive": False, "round": 1, "closed": False, "position": 1, "shown": True,
                        "reason": ladder.EXEMPT, "best_of_owner": True, "shown_so_far": 1, "compared_with": None,
                        "difference": None, "noise": None, "final": None,
                        "public": {"auc": auc, "n_members": 60, "n_nonmembers": 60, "decimals": 2}}
    path.write_text(json.dumps(record))
    assert publish(root).ok
    return root


def test_a_private_split_is_compared_on_its_published_rounded_value_only(tmp_path):
    """A private record is compared with the reported 0.616 on what the site publishes of it
    (the Ladder's public-part AUC on the board's grid, 0.64, with its interval), never on the
    record's full-precision figures (0.6449, [0.6151, 0.6749])."""
    root = _private_world(tmp_path / "results", 0.6449, [0.6151, 0.6749])
    site = build_site(root, tmp_path / "site").out_dir
    data = collect(root)
    (rr,) = data.reported["rows"]
    (path,) = (root / "synthetic" / "secret").rglob("loss-*.json")
    shown = published.disclose(json.loads(path.read_text()))["metrics"]
    lo, hi = shown["auc_ci95"]
    assert rr["reproduced"] == shown["auc"] == 0.64 and [rr["ci_lo"], rr["ci_hi"]] == [lo, hi]
    assert rr["status"] == ("reproduced" if lo <= 0.616 <= hi else "outside interval")  # within: reproduced
    assert rr["difference"] == pytest.approx(0.024) and rr["difference_text"] == "+0.024"
    every = "".join(p.read_text(errors="replace") for p in site.rglob("*") if p.is_file() and p.suffix != ".parquet")
    for full in ("0.6449", "0.6151", "0.6749", "0.0289"):
        assert full not in every, full


def test_the_build_is_byte_identical_under_any_membench_home(world, tmp_path):
    homes = {"empty": tmp_path / "empty-home", "full": REPO / ".membench"}
    homes["empty"].mkdir()
    for name, home in homes.items():
        code = f"from benchmark.site import build_site\nbuild_site({str(world['root'])!r}, {str(tmp_path / name)!r})"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600,
                             env={**__import__("os").environ, "MEMBENCH_HOME": str(home)})
        assert out.returncode == 0, out.stderr[-2000:]
    files = {name: {p.relative_to(tmp_path / name).as_posix(): p.read_bytes()
                    for p in sorted((tmp_path / name).rglob("*")) if p.is_file()} for name in homes}
    assert files["empty"].keys() == files["full"].keys() and any(k.startswith("paper/") for k in files["empty"])
    assert [k for k in files["empty"] if files["empty"][k] != files["full"][k]] == []


def test_a_broken_reported_file_is_listed_without_host_paths_and_the_build_carries_on(world, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(world["root"], root)
    (root / "_reported" / "broken2024file.yaml").write_text("paper: {key: broken2024file}\ntables: []\n")
    site = build_site(root, tmp_path / "site").out_dir
    index = _page(site, "index.html")
    section = index.split('id="reported"')[1].split("</section>")[0]
    assert "_reported/broken2024file.yaml" in section and str(tmp_path) not in index
    assert (site / "paper" / "zhang2025minkpp.html").is_file()


def test_no_reported_folder_means_no_reported_section(tmp_path):
    root = tmp_path / "results"
    _write(root, "wikimia/32", "pythia-2.8b", "loss", 0.6234, [0.59, 0.65])
    assert publish(root).ok
    site = build_site(root, tmp_path / "site").out_dir
    assert 'id="reported"' not in _page(site, "index.html") and not list((site / "paper").iterdir())
    assert "reported" not in pd.read_csv(site / "data" / "split-wikimia-32.csv").columns
