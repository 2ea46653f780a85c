"""The record models, their generated schema and the results store: valid files pass, bad ones are
refused by name; the gate's check recomputes every figure where the split is materialized."""

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
    scores_path,
    write,
)
from benchmark.results.gate import validate_dir
from benchmark.results.schema import render
from synthetic_results import synthetic_record
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


def test_the_committed_schema_is_generated_from_the_record_models():
    """`membench results schema --write` regenerates it; this fails when a model changed without it."""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), "run `membench results schema --write`"
    doc = json.loads(SCHEMA_FILE.read_text())
    assert doc["title"].startswith("membench result record") and doc["properties"]["schema"]["const"] == "membench-result-v1"


def test_published_results_pass_the_models_and_went_through_the_gate():
    if not any(PUBLISHED.rglob("*.json")):
        pytest.skip("no published results yet (make leaderboard-results)")
    scan = validate_dir(PUBLISHED)
    assert scan.ok, [str(r) for r in scan.rejected]
    assert {rec["scorer"]["kind"] for _, rec in scan.records} >= {"attack", "blind_baseline"}
    stamped = ResultsStore(PUBLISHED, require_gate=True).scan()  # what the site reads: every record, unchanged
    assert stamped.ok and len(stamped.records) == len(scan.records), [str(r) for r in stamped.rejected]


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


@pytest.mark.parametrize("a, b", [
    ("min_k(k=0.1)", "min_k(k=0_1)"),   # the slugs of both are min_k_k_0.1 / min_k_k_0_1
    ("my scorer", "my_scorer"),         # one slug, two names
    ("min_k(k=0.1)", "min_k(k=0.2)"),   # used to be cut at the dot: min_k_k_0
    ("min_k_k_0.1", "min_k(k=0.1)"),
])
def test_result_file_names_are_collision_free(tmp_path, a, b):
    for name in (a, b):
        rec, uids, scores = synthetic_record("wikimia/32", "pythia-160m", name, n=60)
        write(tmp_path, rec, uids, scores)
    assert record_path(tmp_path, "wikimia/32", "pythia-160m", a) != record_path(tmp_path, "wikimia/32", "pythia-160m", b)
    scan = validate_dir(tmp_path)
    assert scan.ok and sorted(r["scorer"]["name"] for _, r in scan.records) == sorted([a, b])


def test_file_names_derive_from_the_whole_key():
    from benchmark.results import path_for

    rec, _, _ = synthetic_record("wikimia/32", "pythia-160m", "loss", n=60)
    base = path_for("R", rec)
    assert base.parent.as_posix() == "R/wikimia/32/pythia-160m" and base.name.startswith("loss-")
    variants = []
    for change in (lambda r: r["target"].update(dtype="bfloat16"), lambda r: r["target"].update(context_rule="sliding-window"),
                   lambda r: r["scorer"].update(version="2"), lambda r: r["scorer"]["params"].update(source="word-swap"),
                   lambda r: r["split"].update(content_hash="c" * 64), lambda r: r["target"].update(weights_sha256="d" * 64),
                   lambda r: r.update(submission={"version": "3"}), lambda r: r.update(kind="group")):
        other = json.loads(json.dumps(rec))
        change(other)
        variants.append(path_for("R", other))
    assert len({p.name for p in variants + [base]}) == len(variants) + 1  # every key part changes the name
    assert scores_path(base).name == base.name[: -len(".json")] + ".scores.parquet"
    # a name that holds no record: the coarse key's own name, which no record ever takes
    missing = record_path("R", "wikimia/32", "pythia-160m", "loss")
    assert not missing.exists() and missing.parent == base.parent and missing != base


def test_writing_a_key_again_replaces_an_older_unkeyed_file_of_that_key(tmp_path):
    rec, uids, scores = synthetic_record("wikimia/32", "pythia-160m", "loss", n=60)
    path = write(tmp_path, rec, uids, scores)
    legacy = path.with_name("loss.json")  # the name files had before names carried the key hash
    record = json.loads(path.read_text())
    record["per_sample"]["file"] = "loss.scores.parquet"
    shutil.copy(scores_path(path), path.with_name("loss.scores.parquet"))
    legacy.write_text(json.dumps(record))
    path.unlink()
    scores_path(path).unlink()
    assert len(validate_dir(tmp_path).records) == 1
    write(tmp_path, rec, uids, scores)
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, scores_path(path).name])
    assert len(validate_dir(tmp_path).records) == 1


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
    assert by_file[loss.name].field == "per_sample.sha256"
    assert by_file[zlib.name].field == "metrics.auc_ci95"
    assert by_file["broken.json"].field == "<file>"
    assert str(zlib) in str(by_file[zlib.name]) and "metrics.auc_ci95" in str(by_file[zlib.name])
    with pytest.raises(MembenchError, match=r"zlib-[0-9a-f]{12}\.json: field 'metrics\.auc_ci95'"):
        read(zlib)


def test_store_refuses_missing_per_sample_file_and_duplicate_keys(store):
    loss, zlib = result_files(store)
    copy_dir = store / "wikimia" / "32" / "copied"
    copy_dir.mkdir()
    shutil.copy(loss, copy_dir / loss.name)
    shutil.copy(scores_path(loss), copy_dir / scores_path(loss).name)
    scores_path(zlib).unlink()
    scan = validate_dir(store)
    fields = sorted(r.field for r in scan.rejected)
    assert fields == ["<key>", "per_sample.file"]
    dup = next(r for r in scan.rejected if r.field == "<key>")
    # the first file in path order is kept; the other is refused, naming the one it duplicates
    assert "duplicates" in dup.message
    assert {str(dup.path), dup.message.split()[1]} == {str(loss), str(copy_dir / loss.name)}
    assert len(scan.records) == 1


def test_results_validate_cli(store, capsys):
    assert main(["results", "validate", str(store)]) == 0
    assert "2 valid" in capsys.readouterr().out
    assert all("gate" in json.loads(p.read_text()) for p in result_files(store))  # the gate stamped them
    rec_path = result_files(store)[0]
    rec = json.loads(rec_path.read_text())
    del rec["scorer"]["code_sha256"]
    rec_path.write_text(json.dumps(rec))
    assert main(["results", "validate", str(store), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["valid"] == 1
    assert payload["rejected"] == [
        {"path": str(rec_path), "field": "scorer.code_sha256", "message": "required field is missing"}
    ]
    assert main(["results", "validate", str(store / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("split", ["../../escape", "a//b", "_diagnostics/x", "/abs"])
def test_split_ids_cannot_escape_the_results_folder(tmp_path, split):
    with pytest.raises(MembenchError, match="cannot name a results folder"):
        record_path(tmp_path, split, "pythia-160m", "loss")


# --------------------------------------------------------------------------- self-checking records


@pytest.fixture
def materialized(tmp_path, monkeypatch):
    """A small split materialized in a private MEMBENCH_HOME (so its labels are at hand)."""
    from benchmark import suite

    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    rows = [{"text": f"passage {i}: " + "lorem ipsum " * (1 + i % 5), "label": i % 2} for i in range(80)]
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return suite.add_local_split("test/recompute", data)


def _scored(split, *, kind="attack", seed=0, blind_auc=0.6):
    """A record exactly as the evaluator makes it (real metrics from real labels), its uids and scores."""
    import numpy as np

    from benchmark.evaluate import metrics_block

    uids = split.samples["uid"].tolist()
    labels = split.labels().reindex(uids).to_numpy()
    scores = np.random.default_rng(seed).normal(size=len(uids)) + 0.8 * labels
    scores[3] = np.nan  # one excluded sample
    summary, counts = metrics_block(labels, scores, np.isnan(scores), blind_auc)
    rec, _, _ = synthetic_record(split.id, "pythia-160m", "loss", kind=kind, n=10)
    rec["split"]["content_hash"] = split.content_hash
    rec["metrics"], rec["counts"] = summary, counts
    return rec, uids, scores


def test_valid_records_are_recomputed_and_accepted(materialized, tmp_path):
    rec, uids, scores = _scored(materialized)
    write(tmp_path / "r", rec, uids, scores)
    scan = validate_dir(tmp_path / "r")
    assert scan.ok and len(scan.recomputed) == 1 and scan.not_recomputed == []


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r["metrics"].update(auc=round(r["metrics"]["auc"] + 0.013, 3)), "metrics.auc"),
    (lambda r: r["metrics"]["auc_ci95"].__setitem__(0, r["metrics"]["auc_ci95"][0] - 0.02), "metrics.auc_ci95"),
    (lambda r: r["metrics"]["tpr_at_fpr"]["0.1"].update(value=0.99), "metrics.tpr_at_fpr.0.1.value"),
    (lambda r: r["metrics"].update(n_members=r["metrics"]["n_members"] + 1), "metrics.n_members"),
    (lambda r: r["counts"].update(n_scored=r["counts"]["n_scored"] + 1), "counts.n_scored"),
    (lambda r: r["metrics"]["roc"]["tpr"].__setitem__(1, 0.5), "metrics.roc.tpr"),
    (lambda r: r["metrics"].update(excess_over_blind=0.3), "metrics.excess_over_blind"),
])
def test_a_hand_edited_figure_is_refused_naming_file_and_field(materialized, tmp_path, mutate, field):
    rec, uids, scores = _scored(materialized)
    path = write(tmp_path / "r", rec, uids, scores)
    record = json.loads(path.read_text())
    mutate(record)
    assert schema_errors(record) == []  # schema-valid: only the recomputation can catch it
    path.write_text(json.dumps(record))
    (rejected,) = validate_dir(tmp_path / "r").rejected
    assert rejected.path == path and rejected.field == field
    assert "the record says" in rejected.message and "labels of split test/recompute" in rejected.message
    assert main(["results", "validate", str(tmp_path / "r")]) == 1


def test_forged_per_sample_scores_with_a_matching_hash_are_refused(materialized, tmp_path):
    import pandas as pd

    from benchmark.hashing import sha256_file

    rec, uids, scores = _scored(materialized)
    path = write(tmp_path / "r", rec, uids, scores)
    table = pd.read_parquet(scores_path(path))
    table["score"] = table["score"].to_numpy()[::-1]
    table.to_parquet(scores_path(path), index=False)
    record = json.loads(path.read_text())
    record["per_sample"]["sha256"] = sha256_file(scores_path(path))
    path.write_text(json.dumps(record))
    (rejected,) = validate_dir(tmp_path / "r").rejected
    assert rejected.field.startswith("metrics.") or rejected.field == "counts.n_scored"


def test_per_sample_uids_outside_the_split_are_refused(materialized, tmp_path):
    rec, uids, scores = _scored(materialized)
    write(tmp_path / "r", rec, ["x" + u for u in uids], scores)
    (rejected,) = validate_dir(tmp_path / "r").rejected
    assert rejected.field == "per_sample.file" and "not in the split" in rejected.message


def test_blind_baseline_records_are_recomputed_over_the_rows_they_analyzed(materialized, tmp_path):
    import numpy as np

    from benchmark import metrics

    uids = materialized.samples["uid"].tolist()[5:]  # as if five rows were dropped as duplicates
    labels = materialized.labels().reindex(uids).to_numpy()
    scores = np.random.default_rng(1).normal(size=len(uids)) + labels
    rec, _, _ = synthetic_record(materialized.id, "none", "blind_bow", kind="blind_baseline", n=10)
    rec["split"]["content_hash"] = materialized.content_hash
    rec["metrics"] = {**metrics.summarize(labels, scores), "roc": metrics.roc_points(labels, scores)}
    rec["counts"] = {"n_samples": len(materialized.samples), "n_scored": len(uids)}
    path = write(tmp_path / "r", rec, uids, scores)
    scan = validate_dir(tmp_path / "r")
    assert scan.ok and scan.recomputed == [path]
    record = json.loads(path.read_text())
    record["counts"]["n_samples"] = len(uids)
    path.write_text(json.dumps(record))
    assert validate_dir(tmp_path / "r").rejected[0].field == "counts.n_samples"


def test_records_of_splits_not_materialized_here_are_accepted_and_said_unchecked(materialized, tmp_path):
    rec, uids, scores = synthetic_record("wikimia/32", "pythia-160m", "loss", n=60)
    write(tmp_path / "r", rec, uids, scores)
    rec, uids, scores = _scored(materialized)
    rec["split"]["content_hash"] = "0" * 64  # made on another version of the split
    write(tmp_path / "r", rec, uids, scores)
    scan = validate_dir(tmp_path / "r")
    assert scan.ok and scan.recomputed == []
    reasons = sorted(why for _, why in scan.not_recomputed)
    assert "not materialized here" in reasons[1] and "another content hash" in reasons[0]


def test_recomputation_rules_are_chosen_by_record_kind(materialized):
    import pandas as pd

    from benchmark.results.recompute import RECOMPUTERS, recompute

    assert set(RECOMPUTERS) >= {"attack", "submission", "blind_baseline"}
    rec, uids, scores = _scored(materialized)
    rec["scorer"]["kind"] = "group"
    out = recompute(rec, pd.DataFrame({"uid": uids, "score": scores}), materialized.labels(), "x")
    assert out.status == "skipped" and "kind 'group'" in out.message


def test_verdicts_are_cached_by_record_and_scores_content(materialized, tmp_path, monkeypatch):
    import importlib

    module = importlib.import_module("benchmark.results.recompute")

    rec, uids, scores = _scored(materialized)
    path = write(tmp_path / "r", rec, uids, scores)
    assert validate_dir(tmp_path / "r").ok
    with monkeypatch.context() as patched:
        patched.setattr(module, "recompute", lambda *a, **k: pytest.fail("recomputed an unchanged record"))
        assert len(validate_dir(tmp_path / "r").recomputed) == 1
    record = json.loads(path.read_text())
    record["metrics"]["auc"] = 0.5
    path.write_text(json.dumps(record))
    assert validate_dir(tmp_path / "r").rejected[0].field == "metrics.auc"
