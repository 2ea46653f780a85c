"""The Ladder (issue 23, item 2): a leaderboard that adaptive submitters cannot milk.

The adversary is the boosting attack of Blum and Hardt (ICML 2015; the authors'
``examples/attacks.jl``): submit many random guesses, keep those whose shown score rose, and
submit their majority vote. Without the Ladder (every upload's public-part AUC shown) the vote
climbs far above what it is worth on data it never saw; with the Ladder its best shown score
stays within the stated bound (``ladder.bound``) of its AUC on the secret part, which is what
closing the round reveals. Honest results on public splits are unchanged, and no page,
download or API answer ever holds a withheld record.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from benchmark import metrics
from benchmark.cli import main
from benchmark.errors import MembenchError
from benchmark.home import secret_file
from benchmark.results import ResultsStore, read, write
from benchmark.results import ladder
from benchmark.results.gate import publish
from benchmark.results.published import (
    NOT_SHOWN,
    disclose,
    grid_decimals,
    hanley_mcneil_se,
    may_publish,
    owner_verdict,
)
from synthetic_results import synthetic_record
from benchmark.server import create_app
from benchmark.site import build_site
from site_helpers import local_home, materialize_local_split, record_on_split  # noqa: F401 - a fixture

PRIVATE, PUBLIC = "local/ladder", "local/ladder-open"
ATTACKER, HONEST = "mallory", "alice"
N_GUESSES = 120
KEY = "5eed" * 16  # the private split's partition key, fixed so that the test is reproducible
START = datetime.now(timezone.utc) - timedelta(days=2)


def _at(i: int) -> str:
    return (START + timedelta(minutes=i)).isoformat()


def _upload(split, name, scores, *, owner, at, private=True, kind="submission"):
    """A record of ``scores`` on ``split`` as the evaluator writes it (whole-split figures)."""
    uids = list(split.samples["uid"])
    y = split.labels().loc[uids].to_numpy()
    rec, _, _ = synthetic_record(split.id, "pythia-160m", name, family="local", n=len(uids), kind=kind)
    rec["split"].update(content_hash=split.content_hash, private=private)
    rec["metrics"] = {**metrics.summarize(y, scores, n_resamples=50, seed=0), "roc": metrics.roc_points(y, scores)}
    rec["provenance"]["created_at"] = at
    if kind == "submission":
        rec["scorer"]["owner"] = owner
        rec["submission"] = {"name": name, "description": f"{name}, an upload of {owner}"}
    return rec, uids, np.asarray(scores, float)


def _plant_key(split_id: str) -> None:
    """The maintainers' partition key, written as ``ladder.partition`` would (mode 0600)."""
    fd = os.open(secret_file(f"{split_id}.holdout"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps({"key": KEY, "secret_fraction": ladder.SECRET_FRACTION}))


def _parts(split):
    """(labels, secret mask) in the split's sample order: the maintainers' view, never published."""
    uids = list(split.samples["uid"])
    return split.labels().loc[uids].to_numpy(), ladder.partition(split.id).secret(uids)


def read_scores(world, name):
    """The per-sample scores of a record of the world, in the split's sample order."""
    path, record = world["records"][name]
    table = pd.read_parquet(path.parent / record["per_sample"]["file"]).set_index("uid")
    return table["score"].loc[list(world["split"].samples["uid"])].to_numpy()


def _api_items(client, split_id):
    return client.get("/api/results", params={"split": split_id}).json()


def _every_api_answer(client) -> str:
    return "\n".join(client.get(path).text for path in
                     ("/api/results", "/api/scorers", "/api/splits", "/api/rejected", "/api/health"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A private split (800 texts) and its public twin; the maintainers' LOSS, an honest
    submitter's three uploads and the attacker's random guesses, then the attacker's vote,
    each through the publication gate."""
    tmp = tmp_path_factory.mktemp("ladder")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEMBENCH_HOME", str(tmp / "home"))
        split = materialize_local_split(PRIVATE, n=800, seed=5)
        _plant_key(PRIVATE)
        open_ = materialize_local_split(PUBLIC, n=200, seed=6)
        root = tmp / "results"
        y, secret = _parts(split)
        rng = np.random.default_rng(11)
        noise = rng.normal(size=len(y))
        write(root, *_upload(split, "loss", noise + 1.0 * y, owner=None, at=_at(0), kind="attack"))
        honest = {"alice_v1": noise + 0.6 * y, "alice_v2": noise + 0.9 * y, "alice_v3": noise + 0.91 * y}
        for i, (name, scores) in enumerate(honest.items()):
            write(root, *_upload(split, name, scores, owner=HONEST, at=_at(1 + i)))
        guesses = rng.integers(0, 2, size=(N_GUESSES, len(y))).astype(float)
        for i, g in enumerate(guesses):
            write(root, *_upload(split, f"guess_{i:02d}", g, owner=ATTACKER, at=_at(10 + i)))
        rec, uids, scores = record_on_split(open_, "zlib", strength=1.0, seed=3)
        write(root, rec, uids, scores)
        first = publish(root)
        assert first.ok, [str(r) for r in first.rejected]
        client = TestClient(create_app(tmp / "no-site", root, include_submissions=False))
        # the attacker's feedback: its shown uploads, in order; it keeps those that raised its shown score
        shown = sorted((i for i in _api_items(client, PRIVATE) if i["scorer"].get("owner") == ATTACKER),
                       key=lambda i: i["provenance"]["created_at"])
        kept, best = [], 0.5
        for item in shown:
            if item["metrics"]["auc"] > best:
                kept.append(int(item["scorer"]["name"].split("_")[1]))
                best = item["metrics"]["auc"]
        vote = (guesses[kept] - 0.5).sum(0) if kept else np.zeros(len(y))
        write(root, *_upload(split, "guess_vote", vote, owner=ATTACKER, at=_at(10 + N_GUESSES)))
        second = publish(root)
        assert second.ok
        site = build_site(root, tmp / "site").out_dir
        yield {"root": root, "split": split, "open": open_, "y": y, "secret": secret, "guesses": guesses,
               "honest": honest, "vote": vote, "client": client, "site": site, "tmp": tmp, "patch": patch,
               "records": {r["scorer"]["name"]: (p, r) for p, r in ResultsStore(root).scan().records}}


def test_the_attackers_best_shown_score_stays_within_the_stated_bound(world):
    """With the Ladder: few of the attacker's uploads are shown, and its best shown AUC is within
    ``ladder.bound`` of its AUC on the secret part. Without it (every upload's public-part AUC
    shown, as the gate computed them), the same attack's vote climbs well above its true AUC."""
    y, secret, records = world["y"], world["secret"], world["records"]
    mine = [r for _, r in records.values() if r["scorer"].get("owner") == ATTACKER]
    assert len(mine) == N_GUESSES + 1
    shown = [r for r in mine if r["ladder"]["shown"]]
    assert 1 <= len(shown) <= 5
    items = [i for i in _api_items(world["client"], PRIVATE) if i["scorer"].get("owner") == ATTACKER]
    assert sorted(i["scorer"]["name"] for i in items) == sorted(r["scorer"]["name"] for r in shown)
    best = max(items, key=lambda i: i["metrics"]["auc"])
    _, best_record = records[best["scorer"]["name"]]
    scores = read_scores(world, best["scorer"]["name"])
    true_auc = metrics.auc(y[secret], scores[secret])
    public = best_record["ladder"]["public"]
    stated = ladder.bound(public["n_members"], public["n_nonmembers"], len(mine), len(shown), public["decimals"])
    step = 10.0 ** -public["decimals"]
    assert abs(best["metrics"]["auc"] - true_auc) <= stated + step / 2
    # the counterfactual board without the Ladder: every upload's public-part AUC on the same grid
    d = public["decimals"]
    would_show = {r["scorer"]["name"]: round(r["ladder"]["public"]["auc"], d) for r in mine if r["scorer"]["name"] != "guess_vote"}
    kept = [int(n.split("_")[1]) for n, auc in sorted(would_show.items()) if auc > 0.5]
    vote = (world["guesses"][kept] - 0.5).sum(0)
    unladdered_gap = round(metrics.auc(y[~secret], vote[~secret]), d) - metrics.auc(y[secret], vote[secret])
    laddered_gap = best["metrics"]["auc"] - true_auc
    null_se = np.sqrt((y[~secret].size + 1) / (12 * y[~secret].sum() * (~y[~secret].astype(bool)).sum()))
    assert len(kept) > 30 and unladdered_gap > 4 * null_se, unladdered_gap
    assert unladdered_gap - laddered_gap > 3 * null_se, (unladdered_gap, laddered_gap)


def test_withheld_records_are_on_no_page_download_or_api_answer(world):
    withheld = [n for n, (_, r) in world["records"].items() if r["split"]["id"] == PRIVATE and not r["ladder"]["shown"]]
    assert len(withheld) > N_GUESSES - 5 and "alice_v3" in withheld
    everything = _every_api_answer(world["client"])
    files = [p for p in world["site"].rglob("*") if p.is_file()]
    for name in withheld:
        assert name not in everything, name
        for path in files:
            assert name not in path.read_bytes().decode("utf-8", errors="replace"), (name, path)
    assert world["client"].get("/api/health").json()["results"] == len(world["records"]) - len(withheld)
    for name in withheld:
        path, record = world["records"][name]
        assert not may_publish(record)
        with pytest.raises(ValueError):
            disclose(record)
        assert owner_verdict(record) == {"shown": False, "verdict": NOT_SHOWN}  # no figure, not even to the owner


def test_an_honest_submitter_sees_a_real_improvement_and_pays_for_a_tiny_one(world):
    """alice_v2 is genuinely better than v1 by far more than the noise: shown. alice_v3 is better
    still, by less than one standard error of the paired difference: withheld (the Ladder's cost),
    and v2 stays her best on the board."""
    y, secret = world["y"], world["secret"]
    recs = {n: world["records"][n][1]["ladder"] for n in world["honest"]}
    assert [recs[n]["shown"] for n in ("alice_v1", "alice_v2", "alice_v3")] == [True, True, False]
    assert [recs[n]["best_of_owner"] for n in ("alice_v1", "alice_v2", "alice_v3")] == [False, True, False]
    truth = {n: metrics.auc(y[secret], s[secret]) for n, s in world["honest"].items()}
    assert truth["alice_v3"] > truth["alice_v2"] > truth["alice_v1"]
    assert recs["alice_v3"]["reason"] == ladder.WITHHELD and recs["alice_v3"]["difference"] > 0
    assert recs["alice_v2"]["difference"] > 3 * recs["alice_v2"]["noise"]
    shown = {i["scorer"]["name"]: i for i in _api_items(world["client"], PRIVATE)}
    assert shown["alice_v2"]["ladder"] == {"shown": True, "round": 1, "closed": False, "adaptive": True,
                                           "best_of_owner": True, "figures": shown["alice_v2"]["ladder"]["figures"]}
    assert "public part" in shown["alice_v2"]["ladder"]["figures"]
    for item in shown.values():  # during a round: the AUC on the grid and an interval made from it only
        m = item["metrics"]
        assert m["tpr_at_fpr"] == {} and "round closes" in m["tpr_pending"] and "difference" not in json.dumps(item)
        assert m["auc"] == round(m["auc"], m["shown_decimals"]) and "noise" not in item["ladder"]
    assert world["records"]["loss"][1]["ladder"]["adaptive"] is False  # the maintainers' record: not under it


def test_public_splits_are_unchanged(world):
    """No ladder block on a public split; the published record is the record; the site and the
    API show its whole-split figures, as before the Ladder."""
    (path, record), = [(p, r) for p, r in world["records"].values() if r["split"]["id"] == PUBLIC]
    assert "ladder" not in record and may_publish(record) and disclose(record) == record
    item, = _api_items(world["client"], PUBLIC)
    assert item["metrics"]["auc"] == record["metrics"]["auc"] and "shown_decimals" not in item["metrics"]
    assert len(item["metrics"]["tpr_at_fpr"]) == 3 and "ladder" not in item


def test_closing_the_round_reveals_the_secret_part(world, capsys):
    """`membench results close-round`: every shown record of the round gets its final figures (the
    secret part), the attacker's vote falls back to chance, withheld records stay withheld, and
    what is published afterwards belongs to round 2."""
    root, y, secret = world["root"], world["y"], world["secret"]
    assert main(["results", "close-round", PRIVATE, "--results", str(root)]) == 0
    out = capsys.readouterr().out
    assert "round 1 of local/ladder closed" in out and "alice_v2" in out and "alice_v3" not in out
    items = {i["scorer"]["name"]: i for i in _api_items(world["client"], PRIVATE)}
    for name, item in items.items():
        record = read(world["records"][name][0])
        final = record["ladder"]["final"]
        assert item["ladder"]["closed"] is True and "final" in item["ladder"]["figures"]
        assert item["metrics"]["auc"] == round(final["auc"], item["metrics"]["shown_decimals"])
        scores = read_scores(world, name)
        assert final["auc"] == pytest.approx(metrics.auc(y[secret], scores[secret]))
        assert len(item["metrics"]["tpr_at_fpr"]) == 3 and "tpr_pending" not in item["metrics"]
    attacker = [i for n, i in items.items() if i["scorer"].get("owner") == ATTACKER]
    for item in attacker:  # on rows it never saw, the attacker's guesses are worth chance
        m = item["metrics"]
        assert abs(m["auc"] - 0.5) <= 3 * hanley_mcneil_se(0.5, m["n_members"], m["n_nonmembers"])
    withheld = {n for n, (_, r) in world["records"].items() if r["split"]["id"] == PRIVATE and not r["ladder"]["shown"]}
    assert withheld and not withheld & set(items)
    later = _upload(world["split"], "alice_v4", world["honest"]["alice_v3"] + 0.5 * y, owner=HONEST,
                    at=(datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat())
    path = write(root, *later)
    publish(root)
    block = read(path)["ladder"]
    assert (block["round"], block["closed"], block["shown"]) == (2, False, True)
    with pytest.raises(MembenchError, match="holds no result yet"):
        ladder.close_round(root, PRIVATE, [r for _, r in ResultsStore(root).scan().records
                                           if r["split"]["id"] == PRIVATE], now=START)
    assert main(["results", "close-round", PUBLIC, "--results", str(root)]) == 2
    assert "is public" in capsys.readouterr().err


def test_the_rule_against_a_thousand_and_more_guesses():
    """The same attack at scale against the Ladder's rule itself (``ladder.leads``, the test the
    gate applies): 1,500 guesses on a public part of 2,000. Without the Ladder the vote's shown
    AUC climbs above even the bound the Ladder guarantees; with it the gap stays within the bound
    and a handful of uploads are shown."""
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        y = rng.permutation(np.repeat([1, 0], [2000, 2000]))
        yp, yf = y[:2000], y[2000:]  # the public part, and fresh rows it never sees
        d = grid_decimals(int(yp.sum()), int(2000 - yp.sum()))
        guesses = rng.integers(0, 2, size=(1500, 4000)).astype(float)
        best, last, shown, kept = None, 0.5, 0, []
        for i, g in enumerate(guesses):
            if best is None or ladder.leads(yp, g[:2000], guesses[best, :2000], d)[0]:
                shown += 1
                auc = round(metrics.auc(yp, g[:2000]), d)
                if auc > last:
                    kept.append(i)
                best, last = i, auc
        vote = (guesses[kept] - 0.5).sum(0)
        final = vote if ladder.leads(yp, vote[:2000], guesses[best, :2000], d)[0] else guesses[best]
        shown += final is vote
        stated = ladder.bound(int(yp.sum()), int(2000 - yp.sum()), len(guesses) + 1, shown, d)
        laddered = round(metrics.auc(yp, final[:2000]), d) - metrics.auc(yf, final[2000:])
        assert shown <= 6 and abs(laddered) <= stated + 10.0**-d / 2, (seed, shown, laddered, stated)
        open_kept = [i for i, g in enumerate(guesses) if round(metrics.auc(yp, g[:2000]), d) > 0.5]
        open_vote = (guesses[open_kept] - 0.5).sum(0)
        unladdered = round(metrics.auc(yp, open_vote[:2000]), d) - metrics.auc(yf, open_vote[2000:])
        assert unladdered > stated and unladdered > 5 * max(laddered, 10.0**-d), (seed, unladdered, stated, laddered)


def test_the_partition_key_is_private_stable_and_never_followed_through_a_link(local_home):
    part = ladder.partition("local/keyed")
    path = secret_file("local/keyed.holdout")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    uids = [f"u{i}" for i in range(4000)]
    assert (part.secret(uids) == ladder.partition("local/keyed").secret(uids)).all()
    assert 0.45 < part.secret(uids).mean() < 0.55
    other = ladder.partition("local/other").secret(uids)
    assert (other != part.secret(uids)).mean() > 0.4  # one key per split
    path.unlink()
    decoy = local_home / "decoy.json"
    decoy.write_text(json.dumps({"key": "00" * 32, "secret_fraction": 0.0}))
    os.symlink(decoy, path)
    with pytest.raises(MembenchError, match="cannot be opened"):
        ladder.partition("local/keyed")


def test_placements_give_the_auc_and_the_paired_error_of_the_bootstrap(local_home):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 800)
    a = rng.normal(size=800) + 0.8 * y
    b = a + rng.normal(scale=0.7, size=800) + 0.1 * y
    v10, v01 = ladder.placements(y, a)
    assert v10.mean() == pytest.approx(metrics.auc(y, a)) and v01.mean() == pytest.approx(metrics.auc(y, a))
    diff, se = ladder.paired_difference(y, b, a)
    assert diff == pytest.approx(metrics.auc(y, b) - metrics.auc(y, a))
    boot = []
    for _ in range(400):
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), (y == c).sum()) for c in (0, 1)])
        boot.append(metrics.auc(y[idx], b[idx]) - metrics.auc(y[idx], a[idx]))
    assert se == pytest.approx(np.std(boot), rel=0.2)
    assert ladder.paired_difference(y, a, a) == (0.0, 0.0) and not ladder.leads(y, a, a, 2)[0]


def test_a_reupload_under_the_same_key_never_hides_the_owners_best(local_home, tmp_path):
    """Re-uploading under the same name and version replaces the record (the previous one goes to
    the history): when the new one is withheld, the gate puts the owner's best back, so the best
    stays shown and the withheld one is nowhere."""
    split = materialize_local_split("local/reupload", n=400, seed=8)
    y = split.labels().loc[list(split.samples["uid"])].to_numpy()
    noise = np.random.default_rng(2).normal(size=len(y))
    root = tmp_path / "results"
    good = write(root, *_upload(split, "same_name", noise + 1.0 * y, owner=HONEST, at=_at(0)))
    publish(root)
    shown_auc = read(good)["ladder"]["public"]["auc"]
    write(root, *_upload(split, "same_name", noise + 0.2 * y, owner=HONEST, at=_at(1)))
    report = publish(root)
    assert report.ok
    record = read(good)  # the same file name (the same key): the best is back
    assert record["ladder"]["shown"] and record["ladder"]["public"]["auc"] == shown_auc
    kept = list((root / "_history").rglob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["ladder"]["shown"] is False
    assert publish(root).stamped == []  # settled: a second run changes nothing
    client = TestClient(create_app(tmp_path / "no-site", root, include_submissions=False))
    item, = _api_items(client, "local/reupload")
    assert item["metrics"]["auc"] == round(shown_auc, item["metrics"]["shown_decimals"])


def test_a_private_record_the_ladder_cannot_decide_is_never_published(local_home, tmp_path):
    """Where the split's labels are not at hand (not materialized here) nothing can be decided,
    so nothing is published: the gate fails closed."""
    root = tmp_path / "results"
    rec, uids, scores = synthetic_record("synthetic/elsewhere", "pythia-160m", "far_away", n=80, kind="submission")
    rec["split"]["private"] = True
    rec["scorer"]["owner"] = HONEST
    write(root, rec, uids, scores)
    report = publish(root)
    assert report.ok and len(report.undecided) == 1 and "ladder" not in report.records[0][1]
    assert build_site(root, tmp_path / "site").n_results == 0
    client = TestClient(create_app(tmp_path / "no-site", root, include_submissions=False))
    assert client.get("/api/results").json() == [] and "far_away" not in _every_api_answer(client)
