"""Data cards: generated blocks are rewritten, hand-written text is kept, every split gets one."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from benchmark import diagnostics, home, suite
from benchmark.diagnostics import cards, report


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """Saved diagnostics in a temporary folder; cards in another."""
    monkeypatch.setattr(home, "diagnostics_dir", lambda: tmp_path / "diagnostics")
    return tmp_path / "cards"


def _null_diag():
    rng = random.Random(0)
    texts = [" ".join(f"w{rng.randrange(300)}" for _ in range(rng.randint(20, 40))) for _ in range(80)]
    return diagnostics.diagnose(texts, np.array([1] * 40 + [0] * 40), baselines=["blind_length"])


def test_card_says_never_diagnosed_then_shows_figures_and_keeps_hand_written_text(homes):
    spec = suite.get_split("demo/pydoc")
    first = cards.write_cards([spec], homes)[0]
    text = first.path.read_text()
    assert first.status == "created" and first.path == homes / "demo" / "pydoc.md"
    assert "Never diagnosed" in text and spec.id in text
    # a person writes provenance notes and a known problem, and edits inside a generated block
    text = text.replace("_Not written yet", "Cut from pydoc_data by the demo builder. _Not written yet")
    text = text.replace("- none yet", "- the passages overlap in topic")
    text = text.replace("Never diagnosed", "STALE GENERATED TEXT")
    first.path.write_text(text)

    report.save(_null_diag(), spec.id)
    second = cards.write_cards([spec], homes)[0]
    updated = second.path.read_text()
    assert second.status == "updated" and second.verdict == "clean"
    assert "Cut from pydoc_data by the demo builder." in updated
    assert "- the passages overlap in topic" in updated
    assert "STALE GENERATED TEXT" not in updated and "**Verdict: clean**" in updated
    assert "| `blind_length`" in updated
    assert cards.write_cards([spec], homes)[0].status == "unchanged"  # deterministic


def test_a_deleted_block_comes_back_and_check_mode_writes_nothing(homes, capsys):
    from benchmark.cli import main

    spec = suite.get_split("demo/pydoc")
    path = cards.write_cards([spec], homes)[0].path
    text = path.read_text()
    start = text.index("<!-- membench:begin validity -->")
    end = text.index("<!-- membench:end validity -->") + len("<!-- membench:end validity -->")
    path.write_text(text[:start] + text[end:])
    assert main(["cards", "demo/pydoc", "--dir", str(homes), "--check"]) == 1
    assert "<!-- membench:begin validity -->" not in path.read_text()
    capsys.readouterr()
    assert main(["cards", "demo/pydoc", "--dir", str(homes), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["status"] == "updated"
    assert "<!-- membench:begin validity -->" in path.read_text()
    assert main(["cards", "demo/pydoc", "--dir", str(homes), "--check"]) == 0


def test_check_passes_after_rediagnosing_with_identical_figures_and_reads_as_a_check(homes, capsys):
    from benchmark.cli import main

    spec = suite.get_split("demo/pydoc")
    diag = _null_diag()
    diag["provenance"] = {"created_at": "2026-01-01T00:00:00+00:00", "git_commit": "a" * 40}
    report.save(diag, spec.id)
    path = cards.write_cards([spec], homes)[0].path
    written = path.read_text()
    assert "2026-01-01T00:00:00+00:00" in written and "a" * 12 in written
    # the same figures diagnosed again, later, by another commit
    diag["provenance"] = {"created_at": "2026-02-02T12:00:00+00:00", "git_commit": "b" * 40}
    report.save(diag, spec.id)
    capsys.readouterr()
    assert main(["cards", "demo/pydoc", "--dir", str(homes), "--check"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "up to date" in out and "updated" not in out
    assert cards.write_cards([spec], homes)[0].status == "unchanged" and path.read_text() == written
    # a figure that changes does make the card stale, and the check says so without writing
    diag["baselines"]["blind_length"]["auc"] += 0.001
    report.save(diag, spec.id)
    assert main(["cards", "demo/pydoc", "--dir", str(homes), "--check"]) == 1
    out = capsys.readouterr().out
    assert "stale" in out and "updated" not in out and "run `membench cards`" in out
    assert path.read_text() == written
    assert main(["cards", "demo/pydoc", "--dir", str(homes), "--check", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)[0]["status"] == "stale"
    assert cards.write_cards([spec], homes)[0].status == "updated"


def test_check_names_a_missing_card(homes, capsys):
    from benchmark.cli import main

    assert main(["cards", "demo/pydoc", "--dir", str(homes), "--check"]) == 1
    out = capsys.readouterr().out
    assert "missing" in out and "created" not in out
    assert not (homes / "demo" / "pydoc.md").exists()


def test_every_registered_split_gets_a_card(homes):
    specs = list(suite.splits().values())
    results = cards.write_cards(specs, homes)
    assert len(results) == len(specs) == len({r.path for r in results})
    for spec, res in zip(specs, results):
        text = res.path.read_text()
        assert f"`{spec.id}`" in text
        for block in cards.BLOCKS:
            assert f"<!-- membench:begin {block} -->" in text
        if spec.track == "control":
            assert "**not** membership" in text


def test_family_notes_seed_new_cards(homes):
    (homes / "_notes").mkdir(parents=True)
    (homes / "_notes" / "demo.md").write_text("Hand-written notes for every demo split.")
    path = cards.write_cards([suite.get_split("demo/pydoc")], homes)[0].path
    assert "Hand-written notes for every demo split." in path.read_text()


def test_wikimia24_256_card_reports_length_confound_and_duplicates(shared_data, homes):
    texts, labels, info = diagnostics.load_labelled(shared_data / "wikimia24" / "WikiMIA_length256")
    diag = diagnostics.diagnose(texts, labels, subject=info, baselines=["blind_bow", "blind_length"])
    report.save(diag, "wikimia24/256")
    text = cards.write_cards([suite.get_split("wikimia24/256")], homes)[0].path.read_text()
    assert "Length confound: word count alone separates the classes with AUC 0.64" in text
    assert "median words 256 (members) vs 29 (non-members)" in text
    assert "67 exact duplicate row(s)" in text
    assert "**Verdict: shifted**" in text


def test_split_ids_with_dots_get_their_own_files(tmp_path):
    a, b = "mimir/arxiv/ngram_13_0.8", "mimir/arxiv/ngram_13_0.2"
    assert cards.card_path(a, tmp_path) != cards.card_path(b, tmp_path)
    assert cards.card_path(a, tmp_path) == tmp_path / "mimir" / "arxiv" / "ngram_13_0.8.md"
    assert home.diagnostics_file(a, tmp_path) == tmp_path / "_diagnostics" / "mimir" / "arxiv" / "ngram_13_0.8.json"


def test_cards_leave_no_folder_for_a_split_never_materialized(homes, tmp_path, monkeypatch):
    from benchmark.suite.store import split_dir

    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    spec = suite.get_split("demo/pydoc")
    assert cards.write_cards([spec], homes, check=True)[0].status == "missing"
    assert not split_dir(spec.id).exists()
