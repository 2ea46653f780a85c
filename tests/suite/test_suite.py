"""Suite v1: registry, WikiMIA / WikiMIA-24 from the shared mirror, uids, controls, lock, verify,
bad inputs. Everything is written into a temporary MEMBENCH_HOME."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmark import suite
from benchmark.cli import main
from benchmark.errors import MembenchError
from benchmark.suite import lock as lockfile

WIKIMIA = {32: (387, 389), 64: (284, 258), 128: (139, 111), 256: (51, 31)}
WIKIMIA24 = {32: (684, 702, 172), 64: (653, 586, 157), 128: (263, 245, 64), 256: (232, 207, 67)}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def wiki_home(tmp_path_factory, shared_data):
    """WikiMIA and WikiMIA-24 materialized once from ../shared/data (through the CLI)."""
    root = tmp_path_factory.mktemp("wiki-home")
    old = os.environ.get("MEMBENCH_HOME")
    os.environ["MEMBENCH_HOME"] = str(root)
    try:
        assert main(["suite", "fetch", "wikimia/*", "--from-dir", str(shared_data / "wikimia")]) == 0
        assert main(["suite", "fetch", "wikimia24/*", "--from-dir", str(shared_data / "wikimia24")]) == 0
        yield root
    finally:
        if old is None:
            os.environ.pop("MEMBENCH_HOME", None)
        else:
            os.environ["MEMBENCH_HOME"] = old


@pytest.fixture
def in_wiki_home(wiki_home, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(wiki_home))
    return wiki_home


# ----------------------------------------------------------------------------- registry


def test_registry_declares_the_whole_suite():
    table = suite.splits()
    ids = set(table)
    domains = ["arxiv", "dm_mathematics", "github", "hackernews", "pile_cc", "pubmed_central", "wikipedia_en"]
    for domain in domains:
        for flt in ("ngram_13_0.8", "ngram_13_0.2", "ngram_7_0.2"):
            assert f"mimir/{domain}/{flt}" in ids
    months = ["2020_08", "2021_01", "2021_06", "2022_01", "2022_06", "2023_01", "2023_06"]
    assert {f"mimir/temporal_arxiv/{m}" for m in months} <= ids
    assert {"mimir/full_pile", "mimir/temporal_wiki", "demo/pydoc"} <= ids
    assert {f"{fam}/{n}" for fam in ("wikimia", "wikimia24") for n in (32, 64, 128, 256)} <= ids
    assert table["mimir/wikipedia_en/ngram_13_0.8"].source["config"] == "wikipedia_(en)"
    assert table["mimir/full_pile"].source["cache"] == "cache_100_200_10000_512"
    for spec in table.values():
        assert spec.track in {"pretraining", "controlled", "control", "finetune", "demo"}
        assert spec.source.get("revision"), spec.id
        assert spec.label_meaning and spec.description and spec.domain and spec.fields, spec.id


def test_controls_say_their_labels_are_not_membership():
    controls = [s for s in suite.splits().values() if s.track == "control"]
    ids = {s.id for s in controls}
    assert "control/temporal_arxiv/2020_08-vs-2023_06" in ids
    assert {f"control/wikimia-vs-wikimia24/{n}" for n in (32, 64, 128, 256)} <= ids
    assert any(s.source["builder"] == "null" for s in controls)
    for spec in controls:
        assert spec.is_control and not spec.labels_are_membership
        assert spec.label_meaning.startswith("NOT membership")
    arxiv = suite.get_split("control/temporal_arxiv/2020_08-vs-2023_06").source
    assert arxiv["positive"] == {"split": "mimir/temporal_arxiv/2020_08", "label": 0}
    assert arxiv["negative"] == {"split": "mimir/temporal_arxiv/2023_06", "label": 0}


def test_label_validity_follows_training_data():
    mimir = suite.get_split("mimir/arxiv/ngram_13_0.8")
    for target in ("pythia-160m", "pythia-1b-deduped", "pythia-160m@step143000", "gpt-neo-125m"):
        assert mimir.labels_valid_for(target), target
    for target in ("opt-1.3b", "demo/neox-tiny", "pythia-160m@step99000", "pythia-1b@step1000"):
        assert not mimir.labels_valid_for(target), target
    why = mimir.validity("opt-1.3b")
    assert not why["valid"] and "OPT never trained" in why["reason"]
    assert "not published" in suite.get_split("mimir/pile_cc/ngram_13_0.8").validity("opt-125m")["reason"]
    assert suite.get_split("wikimia/32").labels_valid_for("opt-125m")
    assert suite.get_split("wikimia24/128").labels_valid_for("pythia-6.9b")
    ctrl = suite.get_split("control/wikimia-vs-wikimia24/32").validity("pythia-160m")
    assert ctrl["valid"] and not ctrl["labels_are_membership"] and "shift" in ctrl["reason"]


def test_label_validity_is_per_checkpoint_on_mimir_splits():
    """MIMIR's members come from the whole Pile train split: an intermediate Pythia checkpoint has
    not seen them all, so a checkpoint target is refused (final checkpoint only)."""
    from benchmark.evaluate import RunSpec

    for split_id in [s for s in suite.splits() if s.startswith("mimir/")]:
        spec = suite.get_split(split_id)
        assert spec.valid_revisions == ("step143000",), split_id
        assert not spec.labels_valid_for("pythia-410m@step99000") and spec.labels_valid_for("pythia-410m")
    why = suite.get_split("mimir/github/ngram_13_0.8").validity("pythia-160m@step99000")
    assert not why["valid"] and "final checkpoint only (step143000)" in why["reason"]
    with pytest.raises(MembenchError, match="final checkpoint only") as err:
        RunSpec.build("pythia-160m@step99000", "mimir/github/ngram_13_0.8", ["loss"], progress=False)
    assert "--allow-invalid" in err.value.hint
    # controls built from MIMIR share membership status at every checkpoint; other splits declare none
    assert suite.get_split("control/temporal_arxiv/2020_08-vs-2023_06").labels_valid_for("pythia-160m@step99000")
    assert suite.get_split("wikimia/32").valid_revisions == ()


def test_uids_are_opaque_and_stable():
    # The same text has this uid on every machine: a SHA-256 of a fixed prefix and the UTF-8 text.
    # Pinned literally: changing the scheme would silently re-key every cache and result.
    assert suite.make_uid("The quick brown fox.") == "58d341938a27229a4bd8"
    expected = hashlib.sha256("membench-uid-v1\x00The quick brown fox.".encode("utf-8")).hexdigest()[:20]
    assert suite.make_uid("The quick brown fox.") == expected
    assert suite.make_uid("The quick brown fox.") != suite.make_uid("The quick brown fox")
    assert len(suite.make_uid("x")) == 20 and all(c in "0123456789abcdef" for c in suite.make_uid("x"))


# ----------------------------------------------------------------------------- WikiMIA


def test_wikimia_row_and_class_counts(in_wiki_home):
    for n, (members, nonmembers) in WIKIMIA.items():
        split = suite.load(suite.get_split(f"wikimia/{n}"))
        counts = split.manifest["counts"]
        assert counts == {"total": members + nonmembers, "members": members, "nonmembers": nonmembers}
        assert split.manifest["duplicates_dropped"] == 0
        assert split.labels().value_counts().to_dict() == {1: members, 0: nonmembers}


def test_wikimia24_duplicates_are_dropped_and_counted(in_wiki_home):
    for n, (members, nonmembers, dups) in WIKIMIA24.items():
        split = suite.load(suite.get_split(f"wikimia24/{n}"))
        m = split.manifest
        assert m["counts"] == {"total": members + nonmembers, "members": members, "nonmembers": nonmembers}
        assert m["duplicates_dropped"] == dups
        assert m["counts_before_dedup"]["total"] == members + nonmembers + dups
        assert split.samples["uid"].is_unique and split.samples["text"].is_unique


def test_samples_reveal_nothing_about_labels(in_wiki_home):
    split = suite.load(suite.get_split("wikimia/64"))
    assert list(split.samples.columns) == ["uid", "text"]
    assert split.samples["uid"].is_monotonic_increasing  # sorted by uid, so row order says nothing
    assert (split.samples["uid"] == split.samples["text"].map(suite.make_uid)).all()
    labels = split.labels()
    assert set(labels.index) == set(split.samples["uid"])


def test_lock_holds_the_reference_hashes(in_wiki_home):
    lock = lockfile.read_lock(lockfile.DEFAULT_LOCK)["splits"]
    for fam in ("wikimia", "wikimia24"):
        for n in (32, 64, 128, 256):
            split = suite.load(suite.get_split(f"{fam}/{n}"))
            entry = lock[f"{fam}/{n}"]
            assert split.content_hash == entry["content_hash"], f"{fam}/{n}"
            assert split.manifest["uid_list_sha256"] == entry["uid_list_sha256"]
            assert split.manifest["counts"] == entry["counts"]
    reports = suite.verify([suite.get_split("wikimia/32"), suite.get_split("wikimia24/256")])
    assert all(r["status"] == "ok" and r["locked"] for r in reports)


def test_controls_built_from_wikimia(in_wiki_home, capsys):
    assert main(["suite", "fetch", "control/wikimia-vs-wikimia24/32", "control/null/wikimia/32-nonmembers"]) == 0
    ctrl = suite.load(suite.get_split("control/wikimia-vs-wikimia24/32"))
    assert ctrl.manifest["counts"] == {"total": 389 + 702, "members": 389, "nonmembers": 702}
    assert ctrl.manifest["source"]["parents"]["wikimia/32"] == suite.load(suite.get_split("wikimia/32")).content_hash
    null = suite.load(suite.get_split("control/null/wikimia/32-nonmembers"))
    assert null.manifest["counts"] == {"total": 389, "members": 194, "nonmembers": 195}
    parent = suite.load(suite.get_split("wikimia/32"))
    nonmember_uids = set(parent.labels()[lambda s: s == 0].index)
    assert set(null.samples["uid"]) == nonmember_uids  # both halves are one class of the parent
    lock = lockfile.read_lock(lockfile.DEFAULT_LOCK)["splits"]
    assert ctrl.content_hash == lock["control/wikimia-vs-wikimia24/32"]["content_hash"]
    assert null.content_hash == lock["control/null/wikimia/32-nonmembers"]["content_hash"]


def test_null_control_of_the_demo_builds_offline(home):
    split = suite.ensure("control/null/demo/pydoc-nonmembers")
    demo = suite.load(suite.get_split("demo/pydoc"))
    n = int((demo.labels() == 0).sum())
    assert split.manifest["counts"]["total"] == n
    assert split.manifest["counts"]["members"] == n // 2
    assert split.spec.track == "control"


def test_fetching_every_control_offline_builds_what_it_can(home, capsys):
    assert main(["suite", "fetch", "control/*"]) == 0
    out = capsys.readouterr().out
    assert "control/null/demo/pydoc-nonmembers  materialized" in out
    assert ("skipped control/wikimia-vs-wikimia24/64: needs wikimia/64 and wikimia24/64, not materialized here; "
            "fetch them first: membench suite fetch wikimia/64 wikimia24/64") in out
    assert "skipped control/null/wikimia/32-nonmembers: needs wikimia/32," in out
    controls = [s for s in suite.splits().values() if s.kind == "control"]
    assert out.count("skipped ") == len(controls) - 1
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("| control | needs |"):].split("\n\n")[0]
    for spec in controls:  # the README says which parents each control needs
        for parent in spec.source_model.parents():
            assert f"`{parent}`" in table or f"`{re.sub(r'/[0-9]+$', '/<n>', parent)}`" in table, parent


def test_control_needs_its_parents(home):
    with pytest.raises(MembenchError, match=r"mimir/temporal_arxiv/2020_08, which is not materialized"):
        suite.fetch("control/temporal_arxiv/2020_08-vs-2023_06")


# ----------------------------------------------------------------------------- verify / freeze


def _fetch_small(home, shared_data):
    suite.fetch("wikimia/256", shared_data / "wikimia")
    return home / "suite" / "wikimia" / "256"


def test_tampering_with_a_cached_file_fails_verify(home, shared_data, capsys):
    path = _fetch_small(home, shared_data)
    assert main(["suite", "verify", "wikimia/256"]) == 0
    capsys.readouterr()
    labels = pd.read_parquet(path / "labels.parquet")
    labels.loc[0, "label"] = 1 - labels.loc[0, "label"]
    labels.to_parquet(path / "labels.parquet", index=False)
    assert main(["suite", "verify"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH  wikimia/256" in out and str(path / "labels.parquet") in out
    assert main(["suite", "list", "wikimia/256", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "corrupt"
    with pytest.raises(MembenchError, match="labels.parquet does not match") as err:
        suite.load(suite.get_split("wikimia/256"))
    assert "membench suite fetch wikimia/256 --force" in err.value.hint


def test_a_corrupt_split_says_so_in_list_and_names_force(home, shared_data, capsys):
    path = _fetch_small(home, shared_data)
    assert suite.status(suite.get_split("wikimia/256")) == "fetched"
    (path / "samples.parquet").write_bytes((path / "samples.parquet").read_bytes()[:-10])  # never verified
    assert main(["suite", "list", "wikimia/256"]) == 0
    assert "corrupt" in capsys.readouterr().out
    assert main(["run", "--target", "pythia-160m", "--split", "wikimia/256"]) == 2
    err = capsys.readouterr().err
    assert "wikimia/256 is corrupt" in err and "membench suite fetch wikimia/256 --force" in err
    assert main(["suite", "fetch", "wikimia/256", "--from-dir", str(shared_data / "wikimia"), "--force"]) == 0
    assert suite.status(suite.get_split("wikimia/256")) == "fetched"
    (path / "manifest.json").write_text("{oops")
    assert suite.status(suite.get_split("wikimia/256")) == "corrupt"


def test_freeze_writes_and_verify_checks_the_lock(home, shared_data, tmp_path, monkeypatch, capsys):
    _fetch_small(home, shared_data)
    lock = tmp_path / "test.lock"
    assert main(["suite", "freeze", "--lock", str(lock), "--json"]) == 0
    frozen = json.loads(capsys.readouterr().out)
    assert set(frozen["frozen"]) == {"wikimia/256"}
    monkeypatch.setenv("MEMBENCH_SUITE_LOCK", str(lock))
    assert main(["suite", "verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["splits"][0]["locked"]
    data = json.loads(lock.read_text())
    data["splits"]["wikimia/256"]["content_hash"] = "0" * 64
    lock.write_text(json.dumps(data))
    assert main(["suite", "verify", "wikimia/256"]) == 1
    assert "differs from the lock" in capsys.readouterr().out


def test_list_and_show(home, shared_data, capsys):
    _fetch_small(home, shared_data)
    assert main(["suite", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["wikimia/256"]["size"] == 82 and rows["wikimia/256"]["status"] == "fetched"
    assert rows["mimir/arxiv/ngram_13_0.8"]["status"] == "not fetched"
    assert rows["mimir/arxiv/ngram_13_0.8"]["family"] == "mimir"
    assert main(["suite", "verify", "wikimia/256"]) == 0
    assert main(["suite", "list", "wikimia/*", "--json"]) == 0
    capsys.readouterr()
    assert main(["suite", "list", "wikimia/256", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "verified"
    assert main(["suite", "show", "wikimia/256", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["manifest"]["counts"]["members"] == 51
    assert info["source"]["repo"] == "swj0419/WikiMIA" and info["fields"]["text"] == "input"
    assert "pythia-*" in info["valid_targets"] and info["lock"]["counts"]["total"] == 82
    assert main(["suite", "show", "control/null/wikimia/32-nonmembers"]) == 0
    assert "NOT membership" in capsys.readouterr().out


# ----------------------------------------------------------------------------- formats and bad input


ROWS = [{"input": f"text number {i} about something", "label": i % 2} for i in range(12)]


def _write(folder, fmt):
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(ROWS)
    if fmt == "jsonl":
        frame.to_json(folder / "32.jsonl", orient="records", lines=True)
    elif fmt == "csv":
        frame.to_csv(folder / "WikiMIA_length32.csv", index=False)
    elif fmt == "parquet":
        (folder / "data").mkdir()
        frame.to_parquet(folder / "data" / "WikiMIA_length32-00000-of-00001.parquet", index=False)
    elif fmt == "save_to_disk":
        from datasets import Dataset, DatasetDict

        DatasetDict({"WikiMIA_length32": Dataset.from_pandas(frame)}).save_to_disk(str(folder))
    return folder


def test_every_local_format_gives_the_same_split(home, tmp_path):
    hashes = set()
    for fmt in ("jsonl", "csv", "parquet", "save_to_disk"):
        folder = _write(tmp_path / fmt, fmt)
        split = suite.fetch("wikimia/32", folder, force=True)
        assert split.manifest["counts"] == {"total": 12, "members": 6, "nonmembers": 6}
        hashes.add(split.content_hash)
    assert len(hashes) == 1


def test_truncated_jsonl_names_file_and_line(home, tmp_path):
    folder = _write(tmp_path / "bad", "jsonl")
    lines = (folder / "32.jsonl").read_text().splitlines()
    (folder / "32.jsonl").write_text("\n".join(lines[:4]) + "\n" + lines[4][:17])  # cut mid-row
    with pytest.raises(MembenchError, match=r"32\.jsonl: line 5: not valid JSON"):
        suite.fetch("wikimia/32", folder)
    assert not suite.is_materialized("wikimia/32")


def test_bad_label_and_malformed_csv_name_the_line(home, tmp_path):
    folder = _write(tmp_path / "label", "jsonl")
    rows = [json.dumps(r) for r in ROWS]
    rows[2] = json.dumps({"input": "x y z", "label": "member"})
    (folder / "32.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(MembenchError, match=r"32\.jsonl: line 3: label 'member' is not 0 or 1"):
        suite.fetch("wikimia/32", folder)
    csv = tmp_path / "csv"
    csv.mkdir()
    (csv / "32.csv").write_text('input,label\n"a b c",1\n"d e f",0,extra,fields\n')
    with pytest.raises(MembenchError, match=r"32\.csv: .*line 3"):
        suite.fetch("wikimia/32", csv)


def test_truncated_parquet_names_the_file(home, tmp_path):
    folder = _write(tmp_path / "pq", "parquet")
    file = folder / "data" / "WikiMIA_length32-00000-of-00001.parquet"
    file.write_bytes(file.read_bytes()[:200])
    with pytest.raises(MembenchError, match="WikiMIA_length32-00000-of-00001.parquet: not a readable parquet file"):
        suite.fetch("wikimia/32", folder)


def test_missing_split_file_and_missing_dir(home, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MembenchError, match="no file for this split"):
        suite.fetch("wikimia/64", tmp_path / "empty")
    assert main(["suite", "fetch", "wikimia/64", "--from-dir", str(tmp_path / "nope")]) == 2
    with pytest.raises(MembenchError, match="unknown split 'wikimia/999'"):
        suite.match_splits(["wikimia/999"])


def test_hub_without_network_says_so_in_one_line(home, monkeypatch, capsys):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for split_id in ("wikimia/32", "mimir/github/ngram_7_0.2"):
        assert main(["suite", "fetch", split_id]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err
        assert "HF_HUB_OFFLINE is set" in err and f"membench suite fetch {split_id} --from-dir" in err
    assert not (home / "suite" / "wikimia" / "32").exists()


def test_not_fetched_split_gives_a_clear_error(home):
    with pytest.raises(MembenchError, match=r"split wikimia/128 is not materialized.*suite fetch wikimia/128"):
        suite.ensure("wikimia/128")


def test_force_refetch_replaces_a_tampered_split(home, shared_data):
    path = _fetch_small(home, shared_data)
    (path / "samples.parquet").write_bytes(b"garbage")
    suite.fetch("wikimia/256", shared_data / "wikimia", force=True)
    assert suite.verify([suite.get_split("wikimia/256")])[0]["status"] == "ok"
    assert not path.with_name("256.partial").exists()
    shutil.rmtree(path)
    assert suite.status(suite.get_split("wikimia/256")) == "not fetched"


def test_hub_dataset_path_and_lock_pin(home, tmp_path, monkeypatch):
    """WikiMIA from the Hub goes through snapshot_download at a revision, then the same file
    finder as --from-dir; the fetched commit is recorded, frozen, and used by later fetches."""
    commit = "89abcdef" * 5
    snap = tmp_path / "cache" / "datasets--swj0419--WikiMIA" / "snapshots" / commit
    _write(snap, "parquet")
    asked = []

    def fake_snapshot(repo_id, *, repo_type=None, revision=None, allow_patterns=None, **kw):
        asked.append((repo_id, repo_type, revision))
        return str(snap)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot)
    lock = tmp_path / "suite.lock"
    monkeypatch.setenv("MEMBENCH_SUITE_LOCK", str(lock))
    split = suite.fetch("wikimia/32")
    assert asked == [("swj0419/WikiMIA", "dataset", "main")]
    assert split.manifest["source"]["resolved_commit"] == commit
    assert split.manifest["source"]["path"] == "data/WikiMIA_length32-00000-of-00001.parquet"
    local = suite.fetch("wikimia/32", _write(tmp_path / "local", "jsonl"), force=True)
    assert local.content_hash == split.content_hash
    suite.fetch("wikimia/32", force=True)
    suite.freeze([suite.get_split("wikimia/32")])
    assert json.loads(lock.read_text())["splits"]["wikimia/32"]["hub_commit"] == commit
    suite.fetch("wikimia/32", force=True)
    assert asked[-1] == ("swj0419/WikiMIA", "dataset", commit)  # pinned by the lock


def test_glob_fetch_reports_each_failure_and_stale_controls(home, shared_data, tmp_path, capsys):
    suite.fetch("wikimia/32", shared_data / "wikimia")
    assert main(["suite", "fetch", "control/null/wikimia/32-nonmembers", "control/temporal_arxiv/*", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["control/null/wikimia/32-nonmembers"]["action"] == "materialized"
    skipped = rows["control/temporal_arxiv/2020_08-vs-2023_06"]
    assert skipped["action"] == "skipped" and skipped["needs"] == ["mimir/temporal_arxiv/2020_08",
                                                                    "mimir/temporal_arxiv/2023_06"]
    assert main(["suite", "fetch", "wikimia/*", "mimir/arxiv/ngram_13_0.8"]) == 2  # a real failure still fails
    assert "failed mimir/arxiv/ngram_13_0.8" in capsys.readouterr().out
    suite.fetch("wikimia/32", _write(tmp_path / "other", "jsonl"), force=True)  # the parent changes
    report = suite.verify([suite.get_split("control/null/wikimia/32-nonmembers")])[0]
    assert report["status"] == "mismatch" and "built from an older wikimia/32" in report["problems"][0]


def test_unreachable_hub_endpoint_is_one_line(home, monkeypatch, capsys):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda s: None)  # skip retry back-off
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(home / "hf-cache"))
    assert main(["suite", "fetch", "mimir/hackernews/ngram_13_0.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "the network or the Hub is unreachable" in err and "--from-dir" in err
