"""Record keys: no result is ever silently replaced (issue 27 item 1).

Two settings that can change a number (a dtype, a context rule, a submission's version or
parameters, a perturbation source, another weights file, another version of the split) each keep
their own record and their own row with its own name; writing the same key again says what it
replaced and keeps the previous record in the history; a migration re-keys older folders.
"""

from __future__ import annotations

import json
import logging

import pytest

from benchmark.errors import MembenchError
from benchmark.results import find, migrate, path_for, read, record_key, write
from benchmark.results.gate import publish
from synthetic_results import synthetic_record
from benchmark.site import build_site

SPLIT, TARGET = "synthetic/keys", "pythia-160m"


def _record(name="loss", *, seed=0, kind="attack", **changes):
    rec, uids, scores = synthetic_record(SPLIT, TARGET, name, n=60, seed=seed, kind=kind)
    for block, values in changes.items():
        if isinstance(values, dict) and isinstance(rec.get(block), dict):
            rec[block].update(values)
        else:
            rec[block] = values
    return rec, uids, scores


VARIANTS = {
    "dtype": ({}, {"target": {"dtype": "bfloat16"}}),
    "context rule": ({}, {"target": {"context_rule": "sliding-window"}}),
    "perturbation source": ({"scorer": {"params": {"fill": "t5"}}}, {"scorer": {"params": {"fill": "word-swap"}}}),
    "weights": ({}, {"target": {"weights_sha256": "e" * 64}}),
    "split version": ({}, {"split": {"content_hash": "f" * 64}}),
    "scorer version": ({}, {"scorer": {"version": "2"}}),
}


@pytest.mark.parametrize("what", sorted(VARIANTS))
def test_two_settings_keep_their_own_records_and_rows(tmp_path, what):
    first, second = VARIANTS[what]
    root = tmp_path / "results"
    a = write(root, *_record(seed=1, **json.loads(json.dumps(first))))
    b = write(root, *_record(seed=2, **json.loads(json.dumps(second))))
    assert a != b and a.is_file() and b.is_file() and record_key(read(a)) != record_key(read(b))
    assert not (root / "_history").exists()  # nothing was replaced
    publish(root)
    report = build_site(root, tmp_path / "site")
    rows = json.loads((report.out_dir / "data" / "track-pretraining.json").read_text())["rows"]
    names = [r["scorer_name"] for r in rows]
    assert len(rows) == 2 and len(set(names)) == 2, names  # two rows, each with its own name


def test_a_dtype_and_a_context_rule_are_named_on_the_site(tmp_path):
    root = tmp_path / "results"
    for seed, target in enumerate(({}, {"dtype": "bfloat16"}, {"context_rule": "sliding-window"})):
        write(root, *_record(seed=seed, target=target))
    publish(root)
    rows = json.loads((build_site(root, tmp_path / "site").out_dir / "data" / "scorer-loss.json").read_text())["rows"]
    assert {r["scorer_name"] for r in rows} == {"LOSS"}
    assert {r["scorer_name"] for r in json.loads((tmp_path / "site" / "data" / "track-pretraining.json").read_text())[
        "rows"]} == {"LOSS", "LOSS (bfloat16)", "LOSS (sliding-window)"}


def test_two_versions_or_parameters_of_one_submission_keep_their_own_rows(tmp_path):
    """The overwrite a newcomer saw: a submission's second version (or another parameter) took the
    first one's file. Now each keeps its record, and the rows say which is which."""
    root = tmp_path / "results"
    for seed, (version, params) in enumerate((("1", {"k": 0.2}), ("2", {"k": 0.2}), ("2", {"k": 0.3}))):
        rec, uids, scores = _record("my_scorer", seed=seed, kind="submission",
                                    submission={"name": "my_scorer", "version": version, "description": "d"})
        rec["scorer"].update(version=version, params=params, owner="alice")
        write(root, rec, uids, scores)
    assert len(list(root.rglob("my_scorer-*.json"))) == 3
    publish(root)
    rows = json.loads((build_site(root, tmp_path / "site").out_dir / "data" / "track-pretraining.json").read_text())["rows"]
    assert sorted(r["scorer_name"] for r in rows) == [
        "my_scorer (k=0.2, version 1, submission version 1)", "my_scorer (k=0.2, version 2, submission version 2)",
        "my_scorer (k=0.3, version 2, submission version 2)"]


def test_writing_the_same_key_again_says_what_it_replaced_and_keeps_the_previous(tmp_path, caplog):
    root = tmp_path / "results"
    path = write(root, *_record(seed=1))
    before = read(path)
    rec, uids, scores = _record(seed=2)  # the same key, other scores (e.g. a fixed bug in the scorer)
    rec["scorer"]["code_sha256"] = "9" * 64
    with caplog.at_level(logging.WARNING, logger="benchmark.results.store"):
        assert write(root, rec, uids, scores) == path
    message = caplog.text
    assert f"replaced result {path} (same key)" in message and "AUC" in message and "code 111" not in message
    kept = sorted((root / "_history").rglob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["metrics"] == before["metrics"]
    old_scores = kept[0].parent / json.loads(kept[0].read_text())["per_sample"]["file"]
    assert old_scores.is_file()  # the previous per-sample scores are kept with it
    assert read(path)["metrics"]["auc"] != before["metrics"]["auc"]
    # a rerun that changes nothing but the time it was made replaces nothing worth keeping
    caplog.clear()
    rec2 = json.loads(json.dumps(rec))
    rec2["provenance"]["created_at"] = "2027-01-01T00:00:00+00:00"
    write(root, rec2, uids, scores)
    assert "replaced" not in caplog.text and len(list((root / "_history").rglob("*.json"))) == 1
    # readers never see the history
    publish(root)
    assert build_site(root, tmp_path / "site").n_results == 1


def test_a_record_of_another_owner_or_kind_is_never_replaced(tmp_path):
    root = tmp_path / "results"
    rec, uids, scores = _record("shared", kind="submission")
    rec["scorer"]["owner"] = "alice"
    write(root, rec, uids, scores)
    rec["scorer"]["owner"] = "mallory"
    with pytest.raises(MembenchError, match="is not replaced: it holds a submission record of alice"):
        write(root, rec, uids, scores)


def test_find_names_a_record_by_its_coarse_key_and_refuses_an_ambiguous_one(tmp_path):
    root = tmp_path / "results"
    plain = write(root, *_record(seed=1))
    half = write(root, *_record(seed=2, target={"dtype": "bfloat16"}))
    with pytest.raises(MembenchError, match="2 records of loss on synthetic/keys / pythia-160m differ in dtype"):
        find(root, SPLIT, TARGET, "loss")
    assert find(root, SPLIT, TARGET, "loss", dtype="bfloat16") == half
    assert find(root, SPLIT, TARGET, "loss", dtype="float32") == plain
    assert find(root, SPLIT, TARGET, "zlib") is None


def test_the_migration_re_keys_older_folders_and_changes_no_figure(tmp_path):
    """Files named by an earlier key (or by no key at all) move to the name their whole key gives;
    the published results went through it (tests/results/test_results_store.py)."""
    root = tmp_path / "results"
    paths = [write(root, *_record(name, seed=i)) for i, name in enumerate(("loss", "zlib", "min_k"))]
    legacy = []
    for i, path in enumerate(paths):
        record = json.loads(path.read_text())
        old = path.with_name(f"{record['scorer']['name']}.json" if i == 0 else f"{record['scorer']['name']}-0123456789ab.json")
        old_scores = old.with_name(old.name[:-5] + ".scores.parquet")
        path.with_name(record["per_sample"]["file"]).rename(old_scores)
        record["per_sample"]["file"] = old_scores.name
        old.write_text(json.dumps(record))
        path.unlink()
        legacy.append((old, record))
    moves = migrate(root)
    assert sorted(a for a, _ in moves) == sorted(p for p, _ in legacy)
    for (old, record), new in zip(legacy, paths):
        assert not old.exists() and new.is_file() and path_for(root, read(new)) == new
        assert read(new)["metrics"] == record["metrics"] and new.with_name(read(new)["per_sample"]["file"]).is_file()
    assert migrate(root) == []  # a second run finds nothing to move
    report = publish(root)
    assert report.ok and len(report.records) == 3
