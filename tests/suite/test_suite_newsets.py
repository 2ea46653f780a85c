"""Controlled-membership and newer sets (issue 25.5): WikiMIA-25, the copyright traps of Meeus et
al. 2024 and BookMIA.

The Hub is not reachable here, so each test writes a small local copy in the exact Hub layout of
the dataset (the same file paths, formats and field names as on the Hub at the pinned revision)
and loads it through the real code: with ``--from-dir`` (LocalFiles) and as if from the Hub
(HubFiles, with ``huggingface_hub.snapshot_download`` answered from a fake Hub cache snapshot
that honours ``allow_patterns``, so the files the loader asks the Hub for are the files it reads).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmark import suite
from benchmark.cli import main
from benchmark.errors import MembenchError
from benchmark.suite import user_level as groups
from benchmark.suite.registry import _spec
from benchmark.suite.sources import hub_files

TRAPS_COMMIT = "487062f5e7d5f6dd122957583433491e9fcc8d2d"
BOOKMIA_COMMIT = "e0d586e4ed039eeb7d4481b79fb6357f19d92329"
TRAP_SPLITS = [f"seq_len_{n}_n_rep_{r}" for n in (25, 50, 100) for r in (10, 100, 1000)]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEMBENCH_SUITE_LOCK", str(tmp_path / "suite.lock"))
    return tmp_path / "home"


# ----------------------------------------------------------------------------- local copies in the Hub layout


def write_wikimia25(root: Path) -> dict[int, tuple[int, int]]:
    """``data/WikiMIA_length{n}-00000-of-00001.parquet`` with ``input`` and ``label``; returns
    (members, non-members) per length."""
    counts = {32: (5, 4), 64: (3, 3), 128: (2, 4)}
    (root / "data").mkdir(parents=True, exist_ok=True)
    for n, (m, k) in counts.items():
        rows = [{"input": f"event {n} member {i} " + "w " * n, "label": 1} for i in range(m)]
        rows += [{"input": f"event {n} nonmember {i} " + "v " * n, "label": 0} for i in range(k)]
        pd.DataFrame(rows).to_parquet(root / "data" / f"WikiMIA_length{n}-00000-of-00001.parquet", index=False)
    return counts


def write_traps(root: Path) -> dict[str, tuple[int, int]]:
    """``data/seq_len_{L}_n_rep_{R}-00000-of-00001.parquet`` with ``perplexity_bucket``, ``text`` and
    ``label``; a different number of rows per split, so a split that read its neighbours' files
    would show it."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    counts = {}
    for j, name in enumerate(TRAP_SPLITS):
        m, k = 3 + j % 3, 2 + j % 4
        rows = [{"perplexity_bucket": i % 10, "text": f"{name} trap member {i}", "label": 1} for i in range(m)]
        rows += [{"perplexity_bucket": i % 10, "text": f"{name} trap nonmember {i}", "label": 0} for i in range(k)]
        pd.DataFrame(rows).to_parquet(root / "data" / f"{name}-00000-of-00001.parquet", index=False)
        counts[name] = (m, k)
    return counts


BOOKS = {"Old Book One.txt": 1, "Old Book Two.txt": 1, "New Book 2023.txt": 0}


def write_bookmia(root: Path, rows=None) -> Path:
    """``book_data.jsonl``: one JSON object per excerpt with ``book``, ``snippet_id``, ``snippet``
    and ``label``."""
    root.mkdir(parents=True, exist_ok=True)
    if rows is None:
        rows = [{"book_id": b, "book": book, "snippet_id": s, "snippet": f"{book} excerpt {s}: " + "word " * 20,
                 "label": label}
                for b, (book, label) in enumerate(BOOKS.items()) for s in range(4)]
    (root / "book_data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def fake_hub(monkeypatch, snapshot: Path):
    """``snapshot_download`` answered from ``snapshot`` (a Hub cache folder): only the files the
    allow_patterns select are visible to the loader, as on the Hub."""
    asked = []

    def fake_snapshot(repo_id, *, repo_type=None, revision=None, allow_patterns=None, **kw):
        asked.append({"repo": repo_id, "type": repo_type, "revision": revision, "patterns": list(allow_patterns)})
        served = snapshot.parent / revision  # the Hub cache's snapshots/<revision>/
        shutil.rmtree(served, ignore_errors=True)
        for file in snapshot.rglob("*"):
            rel = file.relative_to(snapshot).as_posix()
            if file.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (served / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(file, served / rel)
        return str(served)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot)
    return asked


# ----------------------------------------------------------------------------- registry


def test_entries_are_pinned_and_say_for_which_targets_their_labels_hold():
    ids = {s.id for s in suite.match_splits(["wikimia25/*", "copyright-traps/*", "bookmia/*"])}
    assert ids == {f"wikimia25/{n}" for n in (32, 64, 128)} | {f"copyright-traps/{s}" for s in TRAP_SPLITS} \
        | {"bookmia/snippets"}
    for n in (32, 64, 128):
        spec = suite.get_split(f"wikimia25/{n}")
        assert spec.source["repo"] == "SimMIA/WikiMIA-25" and spec.source["split"] == f"WikiMIA_length{n}"
        assert spec.fields["text"] == "input" and spec.extra["licence"].startswith("MIT")
        assert spec.labels_valid_for("pythia-160m") and spec.labels_valid_for("opt-1.3b")
    for name in TRAP_SPLITS:
        spec = suite.get_split(f"copyright-traps/{name}")
        assert spec.source["repo"] == "imperial-cpg/copyright-traps" and spec.source["revision"] == TRAPS_COMMIT
        assert spec.track == "controlled" and spec.labels_are_membership
        assert spec.labels_valid_for("croissantllm") and not spec.labels_valid_for("pythia-160m")
        assert "croissantllm*" in spec.validity("opt-125m")["reason"]
    book = suite.get_split("bookmia/snippets")
    assert book.kind == "hub_files" and book.source["revision"] == BOOKMIA_COMMIT
    assert book.source["files"] == ["book_data.jsonl"] and book.fields["group"] == "book"
    assert book.fields["text"] == "snippet" and book.valid_targets == ()
    for target in ("pythia-160m", "opt-1.3b", "gpt-neo-125m", "croissantllm"):
        assert not book.labels_valid_for(target)
    assert "valid for: none" in book.validity("pythia-160m")["reason"]


def test_list_shows_them_offline_with_where_they_come_from(home, capsys):
    assert main(["suite", "list", "wikimia25/*", "copyright-traps/*", "bookmia/*", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == 13 and {r["status"] for r in rows.values()} == {"not fetched"}
    assert rows["bookmia/snippets"]["fetch"] == f"Hub swj0419/BookMIA@{BOOKMIA_COMMIT[:12]} or --from-dir"
    assert rows["copyright-traps/seq_len_25_n_rep_10"]["fetch"].startswith(f"Hub imperial-cpg/copyright-traps@{TRAPS_COMMIT[:12]}")
    assert rows["wikimia25/64"]["fetch"] == "Hub SimMIA/WikiMIA-25@main or --from-dir"
    assert rows["copyright-traps/seq_len_50_n_rep_100"]["track"] == "controlled"
    assert main(["suite", "list", "bookmia/*"]) == 0
    out = capsys.readouterr().out
    assert "not fetched" in out and "Hub swj0419/BookMIA@e0d586e4ed03 or --from-dir" in out


# ----------------------------------------------------------------------------- WikiMIA-25


def test_wikimia25_from_a_local_copy_and_through_the_hub_path(home, tmp_path, monkeypatch, capsys):
    local = tmp_path / "wikimia25"
    counts = write_wikimia25(local)
    assert main(["suite", "fetch", "wikimia25/*", "--from-dir", str(local), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    for n, (m, k) in counts.items():
        assert rows[f"wikimia25/{n}"]["counts"] == {"total": m + k, "members": m, "nonmembers": k}
        split = suite.load(suite.get_split(f"wikimia25/{n}"))
        assert split.manifest["source"]["path"] == f"data/WikiMIA_length{n}-00000-of-00001.parquet"
        assert split.manifest["source"]["repo"] == "SimMIA/WikiMIA-25"
        assert all(f"event {n} " in t for t in split.samples["text"])
    by_copy = suite.load(suite.get_split("wikimia25/64")).content_hash
    assert main(["suite", "list", "wikimia25/64", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["status"] == "fetched" and row["fetch"] is None

    snap = tmp_path / "hub" / "datasets--SimMIA--WikiMIA-25" / "snapshots" / "source"
    write_wikimia25(snap)
    asked = fake_hub(monkeypatch, snap)
    hub = suite.fetch("wikimia25/64", force=True)
    assert asked[0]["repo"] == "SimMIA/WikiMIA-25" and asked[0]["revision"] == "main"
    assert hub.content_hash == by_copy and hub.manifest["source"]["origin"] == "hub"


# ----------------------------------------------------------------------------- copyright traps


def test_each_trap_split_reads_its_own_files(home, tmp_path, capsys):
    local = tmp_path / "traps"
    counts = write_traps(local)
    assert main(["suite", "fetch", "copyright-traps/*", "--from-dir", str(local), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == 9
    for name, (m, k) in counts.items():
        assert rows[f"copyright-traps/{name}"]["counts"] == {"total": m + k, "members": m, "nonmembers": k}, name
        split = suite.load(suite.get_split(f"copyright-traps/{name}"))
        assert set(split.samples.columns) == {"uid", "text"}  # perplexity_bucket is not kept
        labels = split.labels()
        for uid, text in zip(split.samples["uid"], split.samples["text"]):
            assert text.startswith(f"{name} trap ") and labels[uid] == int(" member " in text)


def test_traps_from_the_hub_are_fetched_at_the_pinned_commit(home, tmp_path, monkeypatch):
    snap = tmp_path / "hub" / "datasets--imperial-cpg--copyright-traps" / "snapshots" / "source"
    counts = write_traps(snap)
    asked = fake_hub(monkeypatch, snap)
    split = suite.fetch("copyright-traps/seq_len_25_n_rep_10")
    assert asked == [{"repo": "imperial-cpg/copyright-traps", "type": "dataset", "revision": TRAPS_COMMIT,
                      "patterns": asked[0]["patterns"]}]
    assert split.manifest["source"]["resolved_commit"] == TRAPS_COMMIT
    assert split.manifest["source"]["path"] == "data/seq_len_25_n_rep_10-00000-of-00001.parquet"
    m, k = counts["seq_len_25_n_rep_10"]
    assert split.manifest["counts"] == {"total": m + k, "members": m, "nonmembers": k}
    assert suite.verify([split.spec])[0]["status"] == "ok"


def test_traps_run_refused_on_a_model_they_were_not_injected_into(home, tmp_path, capsys):
    write_traps(tmp_path / "traps")
    suite.fetch("copyright-traps/seq_len_100_n_rep_1000", tmp_path / "traps")
    assert main(["run", "--target", "pythia-160m", "--split", "copyright-traps/seq_len_100_n_rep_1000"]) == 2
    err = capsys.readouterr().err
    assert "croissantllm*" in err and "--allow-invalid" in err


# ----------------------------------------------------------------------------- BookMIA (source kind hub_files)


def test_bookmia_keeps_each_excerpt_with_its_book(home, tmp_path, capsys):
    local = write_bookmia(tmp_path / "bookmia")
    assert main(["suite", "fetch", "bookmia/snippets", "--from-dir", str(local), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["counts"] == {"total": 12, "members": 8, "nonmembers": 4}
    split = suite.load(suite.get_split("bookmia/snippets"))
    m = split.manifest
    assert list(split.samples.columns) == ["uid", "text", "group"] and m["n_groups"] == 3
    assert m["group_field"] == "book" and m["groups_with_both_labels"] == 0 and m["texts_in_several_groups"] == 0
    assert m["source"]["paths"] == ["book_data.jsonl"] and list(m["source"]["files"]) == ["book_data.jsonl"]
    labels = split.labels()
    for uid, text, group in split.samples[["uid", "text", "group"]].itertuples(index=False):
        assert text.startswith(group) and labels[uid] == BOOKS[group]
    table, which = groups.rows(split)
    assert which == groups.SPLIT_SAMPLES and set(table["group"]) == set(BOOKS)
    assert main(["suite", "show", "bookmia/snippets"]) == 0
    assert "uid, text, group" in capsys.readouterr().out


def test_bookmia_from_the_hub_asks_for_exactly_its_file(home, tmp_path, monkeypatch):
    snap = write_bookmia(tmp_path / "hub" / "datasets--swj0419--BookMIA" / "snapshots" / "source")
    (snap / "README.md").write_text("---\nlicense: mit\n---\n")
    local = suite.fetch("bookmia/snippets", write_bookmia(tmp_path / "local")).content_hash
    asked = fake_hub(monkeypatch, snap)
    split = suite.fetch("bookmia/snippets", force=True)
    assert asked == [{"repo": "swj0419/BookMIA", "type": "dataset", "revision": BOOKMIA_COMMIT,
                      "patterns": ["book_data.jsonl"]}]
    assert split.content_hash == local and split.manifest["source"]["resolved_commit"] == BOOKMIA_COMMIT


def test_bookmia_groups_enter_the_content_hash_and_both_labels_in_a_book_are_counted(home, tmp_path):
    first = suite.fetch("bookmia/snippets", write_bookmia(tmp_path / "a")).content_hash
    rows = [json.loads(line) for line in (tmp_path / "a" / "book_data.jsonl").read_text().splitlines()]
    rows[0]["book"] = "Old Book Two.txt"  # the same texts and labels, one excerpt moved to another book
    second = suite.fetch("bookmia/snippets", write_bookmia(tmp_path / "b", rows), force=True)
    assert second.content_hash != first and second.manifest["n_groups"] == 3
    rows[0]["book"] = "New Book 2023.txt"  # now a 2023 book holds an excerpt labelled member
    mixed = suite.fetch("bookmia/snippets", write_bookmia(tmp_path / "c", rows), force=True)
    assert mixed.manifest["groups_with_both_labels"] == 1


def test_bookmia_bad_copies_are_one_line_each(home, tmp_path):
    with pytest.raises(MembenchError, match=r"no file book_data.jsonl under") as err:
        suite.fetch("bookmia/snippets", tmp_path)
    assert "Hub layout of swj0419/BookMIA" in err.value.hint
    rows = [{"snippet": "a text", "label": 1}, {"snippet": "another", "label": 0}]
    with pytest.raises(MembenchError, match=r"book_data.jsonl: no group column 'book' \(it has: snippet, label\)"):
        suite.fetch("bookmia/snippets", write_bookmia(tmp_path / "nogroup", rows))
    rows = [{"book": "A", "snippet": "a text", "label": 1}, {"book": "", "snippet": "another", "label": 0}]
    with pytest.raises(MembenchError, match=r"book_data.jsonl: line 2: 'book' is empty"):
        suite.fetch("bookmia/snippets", write_bookmia(tmp_path / "emptygroup", rows))
    rows = [{"book": "A", "snippet": "a text", "label": 1}, {"book": "B", "snippet": "another", "label": 2}]
    with pytest.raises(MembenchError, match=r"book_data.jsonl: line 2: label 2 is not 0 or 1"):
        suite.fetch("bookmia/snippets", write_bookmia(tmp_path / "badlabel", rows))
    (tmp_path / "trunc").mkdir()
    (tmp_path / "trunc" / "book_data.jsonl").write_text('{"book": "A", "snippet": "x", "label": 1}\n{"book": "B", "sni')
    with pytest.raises(MembenchError, match=r"book_data.jsonl: line 2: not valid JSON"):
        suite.fetch("bookmia/snippets", tmp_path / "trunc")
    assert not suite.is_materialized("bookmia/snippets")


def test_hub_files_entries_must_name_files_inside_the_repository():
    base = {"id": "x/y", "family": "x", "track": "pretraining", "domain": "d", "valid_targets": [],
            "fields": {"text": "text", "label": "label"}, "label_meaning": "m", "description": "d"}
    for files, message in ((None, "files"), ([], "needs `files`"), (["../outside.jsonl"], "leaves the dataset"),
                           (["/abs/path.jsonl"], "leaves the dataset")):
        with pytest.raises(MembenchError, match=message):
            _spec({**base, "source": {"kind": "hub_files", "repo": "o/r", "revision": "main", "files": files}}, "test")
    spec = _spec({**base, "source": {"kind": "hub_files", "repo": "o/r", "revision": "main", "files": "data/*.csv"}},
                 "test")
    assert hub_files.patterns(spec) == ["data/*.csv"]


# ----------------------------------------------------------------------------- data cards


def test_cards_carry_validity_and_say_the_shift_is_not_yet_diagnosed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "empty"))  # nothing materialized or diagnosed here
    patterns = ["wikimia25/*", "copyright-traps/*", "bookmia/*"]
    assert main(["cards", *patterns, "--check", "--json"]) == 0  # the committed cards are up to date
    assert {r["status"] for r in json.loads(capsys.readouterr().out)} == {"ok"}
    from benchmark.diagnostics.cards import card_path
    for spec in suite.match_splits(patterns):
        text = card_path(spec.id).read_text()
        assert "Shift verdict: not yet diagnosed: needs the Hub" in text
        assert "## Label validity" in text and spec.extra["licence"] in text
    traps = card_path("copyright-traps/seq_len_25_n_rep_10").read_text()
    assert "ground truth for targets matching `croissantllm*`" in traps
    assert "No registry target is declared valid" in card_path("bookmia/snippets").read_text()
