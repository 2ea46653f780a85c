"""Private splits, door by door (issue 23 item 1): what the site, its downloads and the API let out.

On a private split only the aggregate metrics rounded to the precision their intervals support,
the verdict and the rounded blind-baseline AUCs may leave; no per-sample scores, ROC, per-class
views, length buckets or statistics, label-dependent hashes; and two rows shown with the same
value stand in an order no label decides. Each test is an attacker's attempt at one door; the
public twin of the same split shows everything, so nothing else broke.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from benchmark import metrics
from benchmark.results import naming, write
from benchmark.results.gate import publish
from synthetic_results import synthetic_record
from benchmark.server import create_app
from benchmark.site import build_site
from site_helpers import materialize_local_split

PRIVATE, PUBLIC = "local/secret", "local/open"
NEAR = ("sub_alpha", "sub_beta")  # two nearly identical uploads on the private split


def _record(split, name, scores, *, private: bool, kind="submission"):
    labels = split.labels()
    uids = list(split.samples["uid"])
    y = labels.loc[uids].to_numpy()
    rec, _, _ = synthetic_record(split.id, "pythia-160m", name, family="local", n=len(uids), kind=kind)
    rec["split"].update(content_hash=split.content_hash, private=private)
    summary = metrics.summarize(y, scores, n_resamples=50, seed=0)
    summary["roc"] = metrics.roc_points(y, scores)
    rec["metrics"] = summary
    if kind == "submission":
        rec["scorer"]["owner"] = name
        rec["submission"] = {"name": name, "description": f"{name}, an upload"}
    return rec, uids, scores


def _near_pair(split, seed=0):
    """Scores of two uploads one swap apart: the first ranks one member above one non-member that
    the second ranks the other way, so its AUC is higher by 1 / (members x non-members)."""
    y = split.labels().loc[list(split.samples["uid"])].to_numpy()
    base = np.random.default_rng(seed).normal(size=len(y)) + 0.7 * y
    better = base.copy()
    members, nonmembers = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    order = np.argsort(base)
    # a member and a non-member adjacent in the ranking, member just below: swapping them helps
    pair = next((a, b) for a, b in zip(order[:-1], order[1:]) if y[a] == 1 and y[b] == 0)
    better[pair[0]], better[pair[1]] = base[pair[1]], base[pair[0]]
    assert metrics.auc(y, better) > metrics.auc(y, base) and len(members) and len(nonmembers)
    return better, base


def _write_world(root, split_private, split_public, swapped: bool):
    better, worse = _near_pair(split_private)
    first, second = (worse, better) if swapped else (better, worse)
    for name, scores in zip(NEAR, (first, second)):
        write(root, *_record(split_private, name, scores, private=True))
    for split, private, seed in ((split_public, False, 3), (split_private, True, 4)):
        y = split.labels().loc[list(split.samples["uid"])].to_numpy()
        scores = np.random.default_rng(seed).normal(size=len(y)) + y
        write(root, *_record(split, "loss", scores, private=private, kind="attack"))
    for split in (split_private, split_public):
        diag = root / "_diagnostics" / "local" / (split.id.split("/")[1] + ".json")
        diag.parent.mkdir(parents=True, exist_ok=True)
        diag.write_text(json.dumps({
            "subject": {"id": split.id, "content_hash": split.content_hash, "counts": {"members": 80}},
            "blind_auc": 0.5213, "blind_auc_ci95": [0.44, 0.60], "blind_best": "blind_length", "verdict": "clean",
            "lengths": {"members": {"words": {"min": 5, "max": 199}}, "word_count_auc": 0.4871},
            "baselines": {"blind_length": {"auc": 0.5213, "auc_ci95": [0.44, 0.60], "description": "log words",
                                           "tpr_at_fpr": {"0.01": {"value": 0.0125, "resolvable": True}}}},
        }))
    report = publish(root)
    assert report.ok and len(report.recomputed) == 4, [str(r) for r in report.rejected]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The same records built twice: once with the first near upload the better one, once with the
    scores swapped; plus cards holding per-class figures for both splits."""
    tmp = tmp_path_factory.mktemp("private")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEMBENCH_HOME", str(tmp / "home"))
        secret = materialize_local_split(PRIVATE, seed=1)
        open_ = materialize_local_split(PUBLIC, seed=2)
        cards = tmp / "cards"
        for split in (secret, open_):
            card = cards / "local" / (split.id.split("/")[1] + ".md")
            card.parent.mkdir(parents=True, exist_ok=True)
            card.write_text("<!-- membench:begin overview -->\n# Data card\n<!-- membench:end overview -->\n\n"
                            "Hand-written note.\n\n<!-- membench:begin counts -->\n| length | members |\n|---|---|\n"
                            "| median words | 117 |\n<!-- membench:end counts -->\n")
        out = {}
        for swapped in (False, True):
            root = tmp / f"results-{swapped}"
            _write_world(root, secret, open_, swapped)
            out[swapped] = {"root": root, "site": build_site(root, tmp / f"site-{swapped}", cards_dir=cards).out_dir}
        out["splits"] = {PRIVATE: secret, PUBLIC: open_}
        out["records"] = {swapped: [json.loads(p.read_text()) for p in out[swapped]["root"].rglob("*.json")
                                    if "_diagnostics" not in p.parts] for swapped in (False, True)}
        yield out


def _files(site):
    return {p.relative_to(site).as_posix(): p for p in sorted(site.rglob("*")) if p.is_file()}


def _text(path):
    return path.read_bytes().decode("utf-8", errors="replace")


def test_the_near_pair_is_shown_equal_and_its_order_is_the_same_whichever_is_better(world):
    """Door: sort order. The two uploads differ by one member/non-member swap; rounded, they are
    equal, and every page, download and API answer lists them in the same order whichever is
    better (by name), so no order reveals a label."""
    recs = [r for r in world["records"][False] if r["scorer"]["name"] in NEAR]
    shown = {r["scorer"]["name"]: _shown_auc(r) for r in recs}
    assert shown[NEAR[0]] == shown[NEAR[1]] and recs[0]["metrics"]["auc"] != recs[1]["metrics"]["auc"]
    a, b = _files(world[False]["site"]), _files(world[True]["site"])
    assert a.keys() == b.keys()
    checked = 0
    for name in a:
        ta, tb = _text(a[name]), _text(b[name])
        if NEAR[0] in ta and NEAR[1] in ta:
            for text in (ta, tb):
                assert text.index(NEAR[0]) < text.index(NEAR[1]), name
            checked += 1
    assert checked >= 5  # the index, the split page, the track's CSV/JSON/LaTeX/Markdown, ...
    for swapped in (False, True):
        api = TestClient(create_app(world[swapped]["site"], world[swapped]["root"], include_submissions=False))
        names = [r["scorer"]["name"] for r in api.get("/api/results", params={"split": PRIVATE}).json()]
        assert [n for n in names if n in NEAR] == list(NEAR)
        ranks = {r["scorer"]["name"]: r["leaderboard"]["rank_group"]
                 for r in api.get("/api/results", params={"split": PRIVATE}).json()}
        assert ranks[NEAR[0]] == ranks[NEAR[1]]


def _shown_auc(record) -> float:
    """A private record's AUC as published: its split's public part, on the board's grid (the Ladder)."""
    public = record["ladder"]["public"]
    return round(public["auc"], public["decimals"])


def _secrets(world) -> dict[str, str]:
    """Strings that depend on the private split's labels or give its per-sample scores."""
    split = world["splits"][PRIVATE]
    out = {"content hash": split.content_hash, "first uid": split.samples["uid"].iloc[0]}
    for rec in world["records"][False]:
        if rec["split"]["id"] != PRIVATE:
            continue
        name = rec["scorer"]["name"]
        out[f"{name} per-sample hash"] = rec["per_sample"]["sha256"]
        out[f"{name} key hash (its file name)"] = naming.key_hash(naming.record_key(rec))
        out[f"{name} gate hash"] = rec["gate"]["content_sha256"]
        out[f"{name} full AUC"] = repr(rec["metrics"]["auc"])
        out[f"{name} full public-part AUC"] = repr(rec["ladder"]["public"]["auc"])
        out[f"{name} full interval"] = repr(rec["metrics"]["auc_ci95"][0])
    return out


def test_nothing_label_dependent_about_the_private_split_is_anywhere_in_the_build(world):
    """Doors: pages, CSV/JSON/LaTeX/Markdown downloads, per-sample parquet copies, plots, the
    schema copy: no hash that depends on the private labels, no per-sample score, no unrounded
    figure, no ROC point, in any file of the build folder."""
    site = world[False]["site"]
    secrets = _secrets(world)
    for name, path in _files(site).items():
        text = _text(path)
        for what, value in secrets.items():
            assert value not in text, f"{what} of the private split in {name}"
    copies = list((site / "data" / "scores").glob("*.parquet"))
    public_hash = next(r["per_sample"]["sha256"] for r in world["records"][False] if r["split"]["id"] == PUBLIC)
    assert [p.stem for p in copies] == [public_hash]  # the public record's per-sample scores only


def test_no_per_class_view_roc_or_length_figure_of_the_private_split(world):
    """Doors: the scorer pages (histograms, AUC by length, length statistics, ROC), the split page's
    diagnostics and data card. The public twin shows them all."""
    site = world[False]["site"]
    for name, path in _files(site).items():
        if name.startswith("data/") and name.endswith(".json"):
            for row in json.loads(path.read_text()).get("rows", []):
                assert row.get("split") != PRIVATE or "roc" not in row, name
    page = _text(site / "scorer" / f"{NEAR[0]}.html")
    assert "<svg" not in page and "members (n=" not in page and "fraction of class" not in page
    assert "a private split (per-class views would reveal its labels)" in page
    loss = _text(site / "scorer" / "loss.html")  # one page, one public and one private row
    roc = loss.split('id="roc"')[1].split("</section>")[0]
    assert roc.count("<svg") == 2 and PRIVATE not in roc and PUBLIC in roc
    classes = loss.split('id="classes"')[1].split("</section>")[0]
    assert classes.count("fraction of class") == 1 and PUBLIC in classes and PRIVATE not in classes.split("left out")[0]
    lengths = json.loads((site / "data" / "scorer-loss-length.json").read_text())["rows"]
    assert lengths and {r["split"] for r in lengths} == {PUBLIC}
    secret = _text(site / "split" / "local-secret.html")
    assert "word_count_auc" not in secret and '"lengths"' not in secret and "median words" not in secret
    assert "Hand-written note." in secret and "0.5213" not in secret and "0.52" in secret and "verdict" in secret
    assert "content hash" not in secret.split('id="card"')[0]
    open_ = _text(site / "split" / "local-open.html")
    assert "word_count_auc" in open_ and "median words" in open_ and "content hash <code>" in open_


def test_downloads_of_private_rows_hold_rounded_values_and_the_word_for_what_is_withheld(world):
    site = world[False]["site"]
    table = pd.read_csv(site / "data" / "track-pretraining-private.csv")
    for rec in world["records"][False]:
        if rec["split"]["id"] != PRIVATE:
            continue
        row = table[table["scorer"] == rec["scorer"]["name"]].iloc[0]
        d = rec["ladder"]["public"]["decimals"]
        assert float(row["auc"]) == _shown_auc(rec) and len(str(row["auc"]).split(".")[1]) <= d
        assert str(row["per_sample_scores"]).startswith("not published on a private split")
    for suffix in ("json", "tex", "md"):
        assert "parquet" not in (site / "data" / f"track-pretraining-private.{suffix}").read_text().split("permalink")[0]


def test_the_api_serves_only_rounded_aggregates_of_the_private_split(world):
    """Doors: /api/results (even with roc=true), /api/scorers (an aggregate over scorers, which
    served full precision before), /api/splits, the diagnostics endpoint."""
    api = TestClient(create_app(world[False]["site"], world[False]["root"], include_submissions=False))
    full = {r["scorer"]["name"]: r for r in world["records"][False] if r["split"]["id"] == PRIVATE}
    answer = api.get("/api/results", params={"split": PRIVATE, "roc": True})
    secrets = _secrets(world)
    for what, value in secrets.items():
        assert value not in answer.text, what
    for item in answer.json():
        rec = full[item["scorer"]["name"]]
        assert item["metrics"]["auc"] == _shown_auc(rec) and item["ladder"]["shown"] is True
        assert "roc" not in item["metrics"] and "per_sample" not in item and "views" not in item
        assert "content_hash" not in item["split"] and "weights_sha256" not in item["target"]
        assert item["disclosure"].startswith("private split")
    scorers = {s["name"]: s for s in api.get("/api/scorers").json()}
    for name in NEAR:
        assert scorers[name]["mean_auc"] == answer.json()[[i["scorer"]["name"] for i in answer.json()].index(name)][
            "metrics"]["auc"]
    assert repr(full["loss"]["metrics"]["auc"]) not in api.get("/api/scorers").text
    splits = {s["id"]: s for s in api.get("/api/splits").json()}
    assert splits[PRIVATE]["content_hash"] is None and splits[PUBLIC]["content_hash"]
    assert splits[PRIVATE]["best_blind_auc"] == 0.52
    diag = api.get(f"/api/splits/{PRIVATE}/diagnostics").json()
    assert set(diag) <= {"schema", "verdict", "verdict_rule", "blind_best", "unit_note", "blind_auc", "blind_auc_ci95",
                         "blind_auc_group", "blind_auc_group_ci95", "baselines", "disclosure"}
    assert diag["blind_auc"] == 0.52 and diag["baselines"]["blind_length"] == {
        "description": "log words", "auc": 0.52, "auc_ci95": [0.44, 0.6]}
    assert "lengths" in api.get(f"/api/splits/{PUBLIC}/diagnostics").json()  # the public twin keeps everything
    public = api.get("/api/results", params={"split": PUBLIC, "roc": True}).json()
    assert len(public[0]["metrics"]["roc"]["fpr"]) > 2 and public[0]["split"]["content_hash"]


def test_a_private_split_page_orders_equal_rows_by_name_in_the_html(world):
    html = _text(world[True]["site"] / "split" / "local-secret.html")
    rows = re.findall(r'<tr id="split-local-secret--([^"]+)"', html)
    near = [r for r in rows if any(n in r for n in NEAR)]
    assert near == sorted(near) and len(near) == 2
