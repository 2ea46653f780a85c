"""The walking skeleton end to end on the demo: numbers, provenance, the site."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmark import results, site
from benchmark.hashing import sha256_file
from benchmark.results.gate import publish
from benchmark.site.precision import decimals_for

pytestmark = pytest.mark.slow  # every test reads the demo job's results (the trained demo target)


def _records(out):
    return {r["scorer"]["name"]: r for _, r in results.iter_records(out)}


def test_loss_beats_chance_and_blind_baseline_is_near_chance(demo_results):
    recs = _records(demo_results)
    assert recs["loss"]["metrics"]["auc"] >= 0.75
    assert recs["blind_bow"]["metrics"]["auc"] <= 0.65
    for name in ("zlib", "min_k", "min_k_plus_plus"):
        assert recs[name]["metrics"]["auc"] > 0.6, name


def test_every_result_carries_provenance(demo_results):
    for path, rec in results.iter_records(demo_results):
        assert rec["split"]["id"] == "demo/pydoc"
        assert len(rec["split"]["content_hash"]) == 64
        assert rec["scorer"]["name"] and len(rec["scorer"]["code_sha256"]) == 64
        prov = rec["provenance"]
        assert prov["membench_version"] and prov["git_commit"]
        assert prov["libraries"]["torch"] and prov["libraries"]["transformers"]
        if rec["scorer"]["kind"] == "attack":
            assert rec["target"]["path"] and len(rec["target"]["weights_sha256"]) == 64
            assert prov["device"].startswith("cpu")
        # per-sample scores referenced by hash
        scores_file = path.parent / rec["per_sample"]["file"]
        assert sha256_file(scores_file) == rec["per_sample"]["sha256"]
        assert len(pd.read_parquet(scores_file)) == rec["counts"]["n_samples"]


def test_site_lists_every_scorer_with_numbers(demo_results, tmp_path):
    import shutil

    shutil.copytree(demo_results, tmp_path / "results")
    publish(tmp_path / "results")  # the publication gate, which the site reads
    index = site.build(tmp_path / "results", tmp_path / "site")
    html = index.read_text()
    recs = _records(demo_results)
    for name in ("loss", "zlib", "min_k", "blind_bow"):
        assert name in html
        m = recs[name]["metrics"]  # shown to the precision its interval supports
        assert f"{m['auc']:.{decimals_for(*m['auc_ci95'])}f}" in html


def test_result_files_are_json_with_schema_tag(demo_results):
    paths = [p for p, _ in results.iter_records(demo_results)]
    assert len(paths) >= 5
    for path in paths:
        assert json.loads(path.read_text())["schema"] == results.SCHEMA_VERSION


@pytest.mark.parametrize("bad", ["{not json", '{"schema": "x"}'])
def test_malformed_result_file_named(tmp_path, bad):
    from benchmark.errors import MembenchError

    f = tmp_path / "r.json"
    f.write_text(bad)
    with pytest.raises(MembenchError, match=str(f)):
        results.read(f)
