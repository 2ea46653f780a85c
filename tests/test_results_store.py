"""The result schema and the results store: valid files pass, bad ones are refused by name."""

from __future__ import annotations

import json
import shutil

import pytest

from benchmark.cli import main
from benchmark.errors import MembenchError
from benchmark.results import (
    SCHEMA_FILE,
    ResultsStore,
    read,
    record_path,
    schema_errors,
    validate_dir,
    write,
)
from benchmark.results.synthetic import synthetic_record
from site_helpers import PUBLISHED, result_files


@pytest.fixture
def store(tmp_path):
    for i, scorer in enumerate(("loss", "zlib")):
        rec, uids, scores = synthetic_record("wikimia/32", "pythia-160m", scorer, family="wikimia", n=60, seed=i)
        write(tmp_path, rec, uids, scores)
    return tmp_path


def test_schema_is_valid_draft_2020_12_and_accepts_written_records(store):
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))
    for path in result_files(store):
        assert schema_errors(json.loads(path.read_text())) == []
    scan = validate_dir(store)
    assert scan.ok and len(scan.records) == 2


def test_published_results_pass_the_schema():
    if not any(PUBLISHED.rglob("*.json")):
        pytest.skip("no published results yet (make leaderboard-results)")
    scan = validate_dir(PUBLISHED)
    assert scan.ok, [str(r) for r in scan.rejected]
    assert {rec["scorer"]["kind"] for _, rec in scan.records} >= {"attack", "blind_baseline"}


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r["metrics"].update(auc=1.7), "metrics.auc"),
        (lambda r: r["metrics"].pop("auc_ci95"), "metrics.auc_ci95"),
        (lambda r: r["scorer"].update(kind="oracle"), "scorer.kind"),
        (lambda r: r["split"].update(content_hash="abc"), "split.content_hash"),
        (lambda r: r["metrics"]["tpr_at_fpr"]["0.1"].update(resolvable=False), "metrics.tpr_at_fpr.0.1.value"),
        (lambda r: r.pop("provenance"), "provenance"),
        (lambda r: r.update(schema="v0"), "schema"),
    ],
)
def test_schema_names_the_field(mutate, field):
    rec, _, _ = synthetic_record("wikimia/32", "pythia-160m", "loss", n=60)
    rec["schema"], rec["per_sample"] = "membench-result-v1", {"file": "loss.scores.parquet", "sha256": "0" * 64}
    assert schema_errors(rec) == []
    mutate(rec)
    assert field in [f for f, _ in schema_errors(rec)]


def test_schema_is_open_where_later_stages_add_fields():
    rec, _, _ = synthetic_record("wikimia/32", "pythia-160m", "loss", n=60)
    rec["schema"], rec["per_sample"] = "membench-result-v1", {"file": "loss.scores.parquet", "sha256": "0" * 64}
    rec["usage"] = {"logprobs_calls": 3}
    rec["metrics"]["excess_over_blind"] = 0.1
    rec["counts"]["exclusion_rule"] = "texts with no scored token"
    rec["submission"] = {"authors": ["A"], "description": "d"}
    assert schema_errors(rec) == []


def test_write_refuses_a_bad_record_and_leaves_nothing(tmp_path):
    rec, uids, scores = synthetic_record("wikimia/32", "pythia-160m", "loss", n=60)
    rec["metrics"]["auc"] = "high"
    with pytest.raises(MembenchError, match=r"field 'metrics\.auc'"):
        write(tmp_path, rec, uids, scores)
    assert list(tmp_path.rglob("*")) == [] or not list(tmp_path.rglob("*.json"))
    assert not list(tmp_path.rglob("*.parquet"))


def test_checkpoints_get_their_own_files(tmp_path):
    for rev in ("step1000", "step2000"):
        rec, uids, scores = synthetic_record("wikimia/32", "pythia-160m", "loss", revision=rev, n=60)
        write(tmp_path, rec, uids, scores)
    assert record_path(tmp_path, "wikimia/32", "pythia-160m", "loss", "step1000").exists()
    assert len(validate_dir(tmp_path).records) == 2


def test_two_names_on_one_file_are_refused(tmp_path):
    rec, uids, scores = synthetic_record("wikimia/32", "pythia-160m", "my scorer", n=60)
    write(tmp_path, rec, uids, scores)
    rec2, _, _ = synthetic_record("wikimia/32", "pythia-160m", "my_scorer", n=60)
    with pytest.raises(MembenchError, match="maps to the same file"):
        write(tmp_path, rec2, uids, scores)


def test_store_refuses_bad_files_naming_file_and_field(store):
    loss, zlib = result_files(store)
    # a hash mismatch: the per-sample file changed after the record was written
    parquet = loss.parent / json.loads(loss.read_text())["per_sample"]["file"]
    parquet.write_bytes(parquet.read_bytes() + b"tampered")
    # a schema failure
    rec = json.loads(zlib.read_text())
    rec["metrics"]["auc_ci95"] = [0.4]
    zlib.write_text(json.dumps(rec))
    # not JSON at all
    (store / "wikimia" / "broken.json").write_text("{oops")
    scan = ResultsStore(store).scan()
    assert scan.records == []
    by_file = {r.path.name: r for r in scan.rejected}
    assert by_file["loss.json"].field == "per_sample.sha256"
    assert by_file["zlib.json"].field == "metrics.auc_ci95"
    assert by_file["broken.json"].field == "<file>"
    assert str(zlib) in str(by_file["zlib.json"]) and "metrics.auc_ci95" in str(by_file["zlib.json"])
    with pytest.raises(MembenchError, match=r"zlib\.json: field 'metrics\.auc_ci95'"):
        read(zlib)


def test_store_refuses_missing_per_sample_file_and_duplicate_keys(store):
    loss, zlib = result_files(store)
    copy_dir = store / "wikimia" / "32" / "copied"
    copy_dir.mkdir()
    shutil.copy(loss, copy_dir / "loss.json")
    shutil.copy(loss.with_name("loss.scores.parquet"), copy_dir / "loss.scores.parquet")
    zlib.with_name("zlib.scores.parquet").unlink()
    scan = validate_dir(store)
    fields = sorted(r.field for r in scan.rejected)
    assert fields == ["<key>", "per_sample.file"]
    dup = next(r for r in scan.rejected if r.field == "<key>")
    # the first file in path order is kept; the other is refused, naming the one it duplicates
    assert "duplicates" in dup.message
    assert {str(dup.path), dup.message.split()[1]} == {str(loss), str(copy_dir / "loss.json")}
    assert len(scan.records) == 1


def test_results_validate_cli(store, capsys):
    assert main(["results", "validate", str(store)]) == 0
    assert "2 valid" in capsys.readouterr().out
    rec_path = result_files(store)[0]
    rec = json.loads(rec_path.read_text())
    del rec["scorer"]["code_sha256"]
    rec_path.write_text(json.dumps(rec))
    assert main(["results", "validate", str(store), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["valid"] == 1
    assert payload["rejected"] == [
        {"path": str(rec_path), "field": "scorer.code_sha256", "message": "'code_sha256' is a required property"}
    ]
    assert main(["results", "validate", str(store / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("split", ["../../escape", "a//b", "_diagnostics/x", "/abs"])
def test_split_ids_cannot_escape_the_results_folder(tmp_path, split):
    with pytest.raises(MembenchError, match="cannot name a results folder"):
        record_path(tmp_path, split, "pythia-160m", "loss")
