"""The FastAPI app: the JSON API with TestClient, and the same app live on 127.0.0.1."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from benchmark.results import write
from benchmark.results.gate import publish
from synthetic_results import synthetic_record
from benchmark.server import create_app
from benchmark.site import build_site, served_by
from site_helpers import MODEL_FREE, XSS, free_port, live_server, make_results, result_files

N_RESULTS = 41


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    results = make_results(tmp_path_factory.mktemp("results"))
    site = tmp_path_factory.mktemp("site")
    build_site(results, site)
    return results, site


@pytest.fixture(scope="module")
def client(folders):
    return TestClient(create_app(folders[1], folders[0]))


def test_results_endpoint_filters(client):
    everything = client.get("/api/results").json()
    assert len(everything) == N_RESULTS
    assert all("roc" not in r["metrics"] for r in everything)
    loss = client.get("/api/results", params={"scorer": "loss", "split": "wikimia/32"}).json()
    assert len(loss) == 4 and {r["target"]["id"] for r in loss} == {"pythia-160m", "pythia-1.4b"}
    blind = client.get("/api/results", params={"kind": "blind_baseline"}).json()
    assert {r["split"]["id"] for r in blind} == {"wikimia/32", "mimir/wikipedia_en/ngram_13_0.8", "control/wikimia_vs_wikimia24"}
    with_roc = client.get("/api/results", params={"target": "pythia-1.4b", "track": "control", "roc": True}).json()
    assert len(with_roc) == 3 and all(len(r["metrics"]["roc"]["fpr"]) > 2 for r in with_roc)


def test_splits_and_diagnostics(client):
    splits = {s["id"]: s for s in client.get("/api/splits").json()}
    assert set(splits) == {"wikimia/32", "mimir/wikipedia_en/ngram_13_0.8", "control/wikimia_vs_wikimia24"}
    assert splits["wikimia/32"]["verdict"] == "shifted" and splits["wikimia/32"]["best_blind_auc"] == 0.98  # as published
    assert splits["control/wikimia_vs_wikimia24"]["track"] == "control"
    diag = client.get("/api/splits/wikimia/32/diagnostics")
    assert diag.status_code == 200 and diag.json()["verdict"] == "shifted"
    none = client.get("/api/splits/mimir/wikipedia_en/ngram_13_0.8/diagnostics")
    assert none.status_code == 404 and "membench diagnose" in none.json()["detail"]
    unknown = client.get("/api/splits/no/such/diagnostics")
    assert unknown.status_code == 404 and "no results for split" in unknown.json()["detail"]


@pytest.mark.parametrize("path", [
    "/api/splits/../../../../etc/passwd/diagnostics",
    "/api/splits/..%2F..%2F..%2Fetc%2Fpasswd/diagnostics",
    "/api/splits/wikimia/32/../../wikimia/32/none/blind_bow/diagnostics",
    "/api/splits/%2Fetc%2Fpasswd/diagnostics",
    "/api/splits/wikimia/../_diagnostics/wikimia/32/diagnostics",
])
def test_a_split_id_in_a_path_is_resolved_against_known_splits_never_joined_onto_a_folder(client, folders, path):
    """The diagnostics endpoint answers for the splits that have results only: a request path that
    names a file of the results folder or of the host gets a 404 and none of its bytes."""
    secret = folders[0] / "leak.json"
    secret.write_text(json.dumps({"secret": "label oracle"}))
    try:
        r = client.get(path)
        assert r.status_code == 404 and "secret" not in r.text and "root:" not in r.text
        assert client.get(f"/api/splits/{folders[0]}/leak/diagnostics").status_code == 404
    finally:
        secret.unlink()


def test_scorers_carry_hash_settings_and_submission(client):
    scorers = {s["name"]: s for s in client.get("/api/scorers").json()}
    assert {"loss", "zlib", "min_k", "blind_bow", XSS, MODEL_FREE} == set(scorers)
    assert scorers["loss"]["n_results"] == 12 and len(scorers["loss"]["code_sha256"][0]) == 64
    assert scorers["min_k"]["paper_name"] == "Min-K% Prob" and scorers[XSS]["paper_name"] == XSS
    assert scorers[XSS]["kind"] == "submission" and scorers[XSS]["submission"]["description"] == XSS
    assert scorers["min_k"]["settings"] == [{"name": "Min-K% Prob", "setting": "", "page": "scorer/min_k.html",
                                             "n_results": 12}]


def test_unknown_query_parameters_are_a_400_naming_the_accepted_ones(client):
    r = client.get("/api/results", params={"scorr": "loss"})
    assert r.status_code == 400
    assert "unknown query parameter(s) scorr" in r.json()["detail"] and "scorer" in r.json()["detail"]
    assert client.get("/api/splits", params={"private": "1"}).status_code == 400
    assert client.get("/api/health", params={"x": "1"}).status_code == 400
    assert client.get("/api/results", params={"scorer": "loss", "unit": "sample"}).status_code == 200


@pytest.fixture(scope="module")
def settings_client(tmp_path_factory):
    """Records of one scorer in several settings, on a whole split and on a calibration rest,
    per sample and per group."""
    root = tmp_path_factory.mktemp("settings")
    for epochs in (None, 5):
        rec, uids, scores = synthetic_record("synthetic/s", "pythia-160m", "mia_tuner" if epochs is None else
                                             f"mia_tuner(epochs={epochs})", n=60, seed=epochs or 0)
        rec["scorer"]["params"] = {} if epochs is None else {"epochs": epochs}
        write(root, rec, uids, scores)
    rec, uids, scores = synthetic_record("synthetic/s", "pythia-160m", "loss", n=60)
    rec["evaluation_subset"] = {"name": "cal10", "excluded": "calibration", "n": 54, "n_calibration": 6,
                                "calibration_sha256": "a" * 64, "rest_sha256": "b" * 64}
    write(root, rec, uids, scores)
    rec, uids, scores = synthetic_record("synthetic/s", "pythia-160m", "user_inference", n=40)
    rec["kind"] = "group"
    write(root, rec, uids, scores)
    publish(root)
    return TestClient(create_app(root / "no-site", root, include_submissions=False))


def test_scorer_filter_matches_the_base_name_and_answers_with_the_setting(settings_client):
    every = settings_client.get("/api/results", params={"scorer": "mia_tuner"}).json()
    assert sorted((r["scorer"]["name"], r["leaderboard"]["name"], r["leaderboard"]["setting"]) for r in every) == [
        ("mia_tuner", "MIA-Tuner", "default"), ("mia_tuner(epochs=5)", "MIA-Tuner (epochs=5)", "epochs=5")]
    one = settings_client.get("/api/results", params={"scorer": "mia_tuner(epochs=5)"}).json()
    assert [r["leaderboard"]["setting"] for r in one] == ["epochs=5"]
    assert one[0]["leaderboard"]["page"] == "scorer/mia_tuner--epochs-5.html"


def test_results_filter_by_subset_and_unit(settings_client):
    rest = settings_client.get("/api/results", params={"subset": "cal10"}).json()
    assert [(r["scorer"]["name"], r["leaderboard"]["evaluated_on"]) for r in rest] == [("loss", "cal10")]
    whole = settings_client.get("/api/results", params={"subset": "whole"}).json()
    assert len(whole) == 3 and all(r["leaderboard"]["evaluated_on"] == "whole" for r in whole)
    groups = settings_client.get("/api/results", params={"unit": "group"}).json()
    assert [(r["scorer"]["name"], r["leaderboard"]["unit"]) for r in groups] == [("user_inference", "group")]
    assert len(settings_client.get("/api/results", params={"unit": "sample"}).json()) == 3
    for param, value in (("subset", "cal11"), ("unit", "users")):
        r = settings_client.get("/api/results", params={param: value})
        assert r.status_code == 400 and f"unknown {param} '{value}'" in r.json()["detail"]


def test_openapi_docs_schema_and_site(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/results", "/api/splits", "/api/splits/{split_id}/diagnostics", "/api/scorers"):
        assert path in spec["paths"], path
    assert {"SplitSummary", "ScorerSummary", "RejectedFile"} <= set(spec["components"]["schemas"])
    assert client.get("/docs").status_code == 200
    assert client.get("/api/schema").json()["properties"]["schema"]["const"] == "membench-result-v1"
    assert client.get("/scorers.html").status_code == 200
    index = client.get("/")
    assert index.status_code == 200 and "membench leaderboard" in index.text
    assert client.get("/split/wikimia-32.html").status_code == 200
    assert client.get("/data/track-pretraining.csv").text.startswith("scorer,")
    assert client.get("/static/leaderboard.js").status_code == 200


def test_extra_routers_and_routers_added_later_win_over_the_site(folders):
    early = APIRouter()

    @early.get("/api/submissions/{sid}")
    def get_submission(sid: str):
        return {"id": sid, "status": "pending"}

    app = create_app(folders[1], folders[0], routers=[early], include_submissions=False)
    late = APIRouter()

    @late.get("/index.html")
    def shadow():
        return {"late": True}

    app.include_router(late)
    c = TestClient(app)
    assert c.get("/api/submissions/7").json() == {"id": "7", "status": "pending"}
    assert c.get("/index.html").json() == {"late": True}


def test_api_sees_new_and_refused_files_without_restart(folders, tmp_path):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(folders[0], results)
    c = TestClient(create_app(folders[1], results))
    assert c.get("/api/health").json()["results"] == N_RESULTS
    bad = result_files(results)[0]
    rec = json.loads(bad.read_text())
    rec["metrics"]["auc_ci95"] = "wide"
    bad.write_text(json.dumps(rec))
    assert c.get("/api/health").json() == {"status": "ok", "version": c.app.version, "results": N_RESULTS - 1,
                                           "rejected": 1}
    assert c.get("/api/rejected").json()[0]["field"] == "metrics.auc_ci95"


def test_live_server_on_localhost(folders):
    with live_server(create_app(folders[1], folders[0])) as base:
        with httpx.Client(base_url=base, timeout=10, trust_env=False) as http:
            assert len(http.get("/api/results", params={"scorer": "zlib"}).json()) == 12
            assert http.get("/api/splits").status_code == 200
            assert http.get("/api/splits/wikimia/32/diagnostics").json()["verdict"] == "shifted"
            assert any(s["name"] == "loss" for s in http.get("/api/scorers").json())
            page = http.get("/")
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert "/api/results" in http.get("/openapi.json").json()["paths"]


def test_membench_serve_command(folders, tmp_path):
    import subprocess
    import sys

    from site_helpers import REPO

    port = free_port()
    site = tmp_path / "site"  # empty: `serve` builds it first
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", "serve", "--results", str(folders[0]), "--site", str(site),
         "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline, health = time.time() + 90, None
        while time.time() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2, trust_env=False).json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health == {"status": "ok", "version": health["version"], "results": N_RESULTS, "rejected": 0}
        assert (site / "index.html").is_file()
        served = served_by(site)  # `leaderboard build` into this folder will say so
        assert served and served["pid"] == proc.pid and served["results"] == str(folders[0].resolve())
        assert httpx.get(f"http://127.0.0.1:{port}/.membench-serving.json", trust_env=False).status_code == 404
        assert "membench leaderboard" in httpx.get(f"http://127.0.0.1:{port}/", trust_env=False).text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert served_by(site) is None and not (site / ".membench-serving.json").exists()


def test_site_built_after_start_is_served(folders, tmp_path):
    site = tmp_path / "later"
    c = TestClient(create_app(site, folders[0], include_submissions=False))
    missing = c.get("/")
    assert missing.status_code == 404 and "membench leaderboard build" in missing.json()["detail"]
    assert c.get("/api/health").status_code == 200
    build_site(folders[0], site)
    assert "membench leaderboard" in c.get("/").text


@pytest.mark.parametrize("param, value, listed", [
    ("split", "wikimia/33", "wikimia/32"),
    ("target", "pythia-161m", "pythia-160m"),
    ("scorer", "los", "loss"),
    ("track", "pretrainig", "pretraining"),
    ("kind", "attacks", "attack"),
])
def test_unknown_filter_values_are_a_400_naming_the_valid_ones(client, param, value, listed):
    r = client.get("/api/results", params={param: value})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert f"unknown {param} '{value}'; valid choices: " in detail and listed in detail
    assert f"closest: {listed}" in detail


def test_known_filter_values_without_results_are_an_empty_list(client):
    # a registry split, a built-in scorer and a schema kind with no results yet are valid filters
    assert client.get("/api/results", params={"split": "wikimia/64"}).json() == []
    assert client.get("/api/results", params={"scorer": "min_k_plus_plus"}).json() == []
    assert client.get("/api/results", params={"track": "demo"}).json() == []
    assert client.get("/api/results", params={"target": "pythia-70m"}).json() == []


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_work_offline_from_local_assets(client, page):
    html = client.get(page).text
    urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert urls and all(u.startswith("/") for u in urls), urls  # nothing from a CDN or font service
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    for u in re.findall(r'(?:src|href)="([^"]+)"', html):
        asset = client.get(u)
        assert asset.status_code == 200 and len(asset.content) > 100, u


def test_dot_files_of_the_site_folder_are_not_served(folders, client):
    (folders[1] / ".membench-serving.json").write_text("{}")
    try:
        assert client.get("/.membench-serving.json").status_code == 404
        assert client.get("/.membench-site.json").status_code == 404
        assert client.get("/split/../.membench-site.json").status_code == 404
    finally:
        (folders[1] / ".membench-serving.json").unlink()
