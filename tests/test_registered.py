"""Splits and targets registered under MEMBENCH_HOME merge with the shipped registries."""

from __future__ import annotations

import pytest

from benchmark import registered, suite, targets
from benchmark.errors import MembenchError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path))
    return tmp_path


ENTRY = {
    "id": "user/my-split",
    "family": "user",
    "track": "user",
    "domain": "notes",
    "source": {"kind": "local_file", "path": "/tmp/x.jsonl"},
    "fields": {"text": "text", "label": "label"},
    "valid_targets": ["pythia-*"],
    "label_meaning": "1 = member",
}


def test_registered_split_is_looked_up_like_a_shipped_one(home):
    spec = suite.register_split(ENTRY)
    assert suite.get_split("user/my-split") == spec
    assert spec.labels_valid_for("pythia-70m") and not spec.labels_valid_for("opt-125m")
    assert "user/my-split" in suite.splits() and "demo/pydoc" in suite.splits()
    assert [s.id for s in suite.match_splits(["user/*"])] == ["user/my-split"]
    assert registered.entry_file("splits", "user/my-split").parent == home / "registry" / "splits"


def test_registered_split_never_shadows_or_replaces(home):
    suite.register_split(ENTRY)
    with pytest.raises(MembenchError, match="already registered"):
        suite.register_split(ENTRY)
    with pytest.raises(MembenchError, match="shipped registry"):
        suite.register_split({**ENTRY, "id": "demo/pydoc"})
    # a hand-written file that reuses a shipped id is named, not silently used
    registered.entry_file("splits", "demo/pydoc").write_text("id: demo/pydoc\n")
    with pytest.raises(MembenchError, match="reuses an id"):
        suite.get_split("demo/pydoc")


def test_a_registered_entry_is_checked_like_a_shipped_one(home):
    with pytest.raises(MembenchError, match=r"split user/my-split in the entry to register: unknown field 'colour'"):
        suite.register_split({**ENTRY, "colour": "red"})
    registered.entry_file("splits", "user/typo").write_text(
        "id: user/typo\nfamily: f\ntrack: t\ndomain: d\nlabel_meaning: m\nfields: {text: text, label: label}\n"
        "source: {kind: local_file, paht: /tmp/x.jsonl}\n")
    with pytest.raises(MembenchError, match=r"user__typo.yaml: unknown field 'source.paht'") as err:
        suite.splits()
    assert "valid fields: kind, path, config, sha256" in err.value.hint


def test_unreadable_registered_file_is_named(home):
    bad = registered.entry_file("splits", "user/broken")
    bad.write_text("id: [unclosed\n")
    with pytest.raises(MembenchError, match="user__broken.yaml"):
        suite.splits()


def test_registered_target_resolves_to_its_folder(home, tmp_path):
    from benchmark.targets.loading import resolve_path

    folder = tmp_path / "model"
    folder.mkdir()
    spec = targets.register_target({"id": "ft/recipe-a", "path": str(folder), "family": "finetuned",
                                    "recipe": {"id": "recipe-a"}})
    assert targets.get_target("ft/recipe-a") == spec
    assert spec.family == "finetuned" and spec.extra == {"recipe": {"id": "recipe-a"}}
    assert resolve_path(spec) == folder
    assert "ft/recipe-a" in targets.targets()
    with pytest.raises(MembenchError, match="no revisions"):
        targets.get_target("ft/recipe-a@step1")
    with pytest.raises(MembenchError, match="shipped registry"):
        targets.register_target({"id": "pythia-70m", "path": str(folder)})
    with pytest.raises(MembenchError, match="invalid id|not a valid id"):
        registered.entry_file("targets", "../escape")
