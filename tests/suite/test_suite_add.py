"""A researcher's own data as a split: `membench suite add` and `suite remove`, registered under
MEMBENCH_HOME (never in the package), normalized, hashed and verified like a registry split,
and diagnosable with `membench diagnose`. Everything is written into a temporary MEMBENCH_HOME."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmark import suite
from benchmark.cli import main
from benchmark.errors import MembenchError
from benchmark.suite.registry import REGISTRY_FILE


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _rows(n=40):
    rows = [{"body": f"a member passage about topic {i} " * 3, "is_member": 1} for i in range(n // 2)]
    rows += [{"body": f"a different non-member passage {i} " * 3, "is_member": 0} for i in range(n // 2)]
    rows.append(dict(rows[0]))  # one exact duplicate
    return rows


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _rows()) + "\n")
    return path


def test_suite_add_registers_and_materializes_like_a_registry_split(home, data, capsys):
    shipped = REGISTRY_FILE.read_text()
    assert main(["suite", "add", "mylab/forum", "--file", str(data), "--text-field", "body",
                 "--label-field", "is_member", "--valid-for", "pythia-*", "demo/*", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"] == {"total": 40, "members": 20, "nonmembers": 20} and info["duplicates_dropped"] == 1
    assert REGISTRY_FILE.read_text() == shipped  # the package's splits.yaml is never edited
    assert (home / "registry" / "splits" / "mylab__forum.yaml").is_file()
    spec = suite.get_split("mylab/forum")
    assert spec.labels_valid_for("pythia-160m@step99000") and not spec.labels_valid_for("opt-1.3b")
    split = suite.load(spec)
    texts = [r["body"] for r in _rows()]
    assert sorted(split.samples["uid"]) == sorted({suite.make_uid(t) for t in texts})  # the same uids
    assert list(split.samples.columns) == ["uid", "text"]  # labels apart, as everywhere
    assert set(split.manifest["files"]) == {"samples.parquet", "labels.parquet"}
    assert suite.verify([spec])[0]["status"] == "ok"
    assert suite.status(spec) == "verified"
    assert main(["suite", "list", "mylab/*", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "verified"


def test_the_same_rows_from_any_format_give_the_same_split(home, tmp_path):
    frame = pd.DataFrame(_rows())
    frame.to_csv(tmp_path / "mine.csv", index=False)
    frame.to_parquet(tmp_path / "mine.parquet")
    hashes = {suite.add_local_split(f"fmt/{ext}", tmp_path / f"mine.{ext}", text_field="body",
                                    label_field="is_member").content_hash for ext in ("csv", "parquet")}
    assert len(hashes) == 1


def test_an_added_split_is_diagnosed_like_any_other(home, data, tmp_path, capsys):
    suite.add_local_split("mylab/forum", data, text_field="body", label_field="is_member")
    assert main(["diagnose", "mylab/forum", "--results-dir", str(tmp_path / "results"), "--json"]) == 0
    diag = json.loads(capsys.readouterr().out)
    assert diag["subject"]["id"] == "mylab/forum" and diag["blind_auc"] > 0.9  # the two classes differ in wording
    from benchmark.evaluate import best_blind_auc

    assert best_blind_auc(tmp_path / "elsewhere", "mylab/forum", suite.load(suite.get_split("mylab/forum")).content_hash) \
        == diag["blind_auc"]  # read from MEMBENCH_HOME for any results folder


@pytest.mark.parametrize("kwargs, message", [
    ({"label_field": "nope", "text_field": "body"}, "no column 'nope' (it has: body, is_member)"),
    ({"label_field": "is_member"}, "no 'text' or 'input' column"),
])
def test_a_bad_file_registers_nothing(home, data, kwargs, message):
    with pytest.raises(MembenchError) as err:
        suite.add_local_split("mylab/bad", data, **kwargs)
    assert message in str(err.value)
    assert "mylab/bad" not in suite.splits() and not suite.is_materialized("mylab/bad")


def test_bad_labels_and_one_class_are_refused_naming_the_line(home, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0.5}\n')
    with pytest.raises(MembenchError, match=r"line 2: label 0.5 is not 0 or 1"):
        suite.add_local_split("mylab/bad", bad)
    one = tmp_path / "one.jsonl"
    one.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 1}\n')
    with pytest.raises(MembenchError, match="2 members and 0 non-members"):
        suite.add_local_split("mylab/one", one)
    assert not [s for s in suite.splits() if s.startswith("mylab/")]


def test_ids_names_and_replacement(home, data, tmp_path, capsys):
    with pytest.raises(MembenchError, match="belongs to the shipped registry"):
        suite.add_local_split("wikimia/32", data, text_field="body", label_field="is_member")
    with pytest.raises(MembenchError, match="not a usable split id"):
        suite.add_local_split("../escape", data, text_field="body", label_field="is_member")
    first = suite.add_local_split("mylab/forum", data, text_field="body", label_field="is_member")
    with pytest.raises(MembenchError, match="already registered"):
        suite.add_local_split("mylab/forum", data, text_field="body", label_field="is_member")
    smaller = tmp_path / "smaller.jsonl"
    smaller.write_text("\n".join(json.dumps(r) for r in _rows(10)) + "\n")
    # a failed replacement leaves the old entry as it was
    with pytest.raises(MembenchError):
        suite.add_local_split("mylab/forum", smaller, text_field="nope", label_field="is_member", replace=True)
    assert suite.load(suite.get_split("mylab/forum")).content_hash == first.content_hash
    second = suite.add_local_split("mylab/forum", smaller, text_field="body", label_field="is_member", replace=True)
    assert second.manifest["counts"]["total"] == 10
    assert main(["suite", "remove", "mylab/forum"]) == 0
    assert "mylab/forum" not in suite.splits() and not suite.is_materialized("mylab/forum")
    assert main(["suite", "remove", "wikimia/32"]) == 2
    assert "shipped registry" in capsys.readouterr().err
