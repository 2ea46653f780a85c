"""What a submitter controls, read safely: submission.yaml, folder copies, archives, the log,
and the rounding of what the leaderboard publishes."""

from __future__ import annotations

import io
import os
import tarfile

import numpy as np
import pytest

from benchmark.errors import MembenchError
from benchmark.results import public_view, round_metric
from benchmark.results.published import ROC_GRID, decimals_for
from benchmark.submissions import archive, metadata
from benchmark.submissions.folder import FolderError, copy_folder
from benchmark.submissions.joblog import SCORER_PREFIX, ScorerOutput, harness_line, tail

BASE = 'name: ok\nversion: "1"\nauthors: [a]\ndescription: d\nthreat_model: t\ncapabilities: []\n'


@pytest.mark.parametrize("text, message", [
    ("a: &x [1, 2]\nb: *x\n", "anchors and aliases"),
    ("when: !!timestamp 2024-01-01\n", "are not allowed"),
    ("blob: !!binary aGk=\n", "are not allowed"),
    ("s: !!set {a, b}\n", "are not allowed"),
    ("x: .inf\n", None),  # a string in JSON-only YAML: fine
    ("x: 1e999\n", "non-finite"),
    ("x: " + "9" * 5000 + "\n", "number too long"),
    ("x: " + "[" * 30 + "]" * 30 + "\n", "nests deeper"),
    ("1: one\n", "keys must be strings"),
    ("- a list\n", "must be a mapping"),
])
def test_yaml_is_json_data_only(text, message):
    if message is None:
        assert metadata.parse(text) == {"x": ".inf"}
        return
    with pytest.raises(MembenchError, match=message) as err:
        metadata.parse(text)
    assert "\n" not in str(err.value)


def test_dates_stay_strings_and_octal_hex_stay_strings():
    assert metadata.parse("a: 2024-01-01\nb: 0x10\nc: 010\nd: 1.5\ne: 2\nf: null\ng: true\n") == {
        "a": "2024-01-01", "b": "0x10", "c": "010", "d": 1.5, "e": 2, "f": None, "g": True}


@pytest.mark.parametrize("extra, message", [
    ("params: [1, 2]\n", "params: \\[1, 2\\] is not of type 'object'"),
    ("params: {1x: 2}\n", "does not match"),
    ("params: {k: {a: {b: {c: {d: {e: 1}}}}}}\n", None),
    ('authors: ["a\\u0007b"]\n', "must not hold control characters"),
    ('license: "MIT\\n=cmd"\n', "must not hold control characters"),
    ("url: 'javascript:alert(1)'\n", "does not match"),
    ("class: 'os.system'\n", "does not match"),
])
def test_the_schema_reaches_into_params_and_text_fields(extra, message):
    meta = metadata.parse(BASE.replace("authors: [a]\n", "") + ("" if "authors" in extra else "authors: [a]\n") + extra)
    if message is None:
        assert metadata.check(meta)["params"]["k"]["a"]
        return
    with pytest.raises(MembenchError, match=message):
        metadata.check(meta)


def test_an_oversized_or_linked_yaml_is_refused(tmp_path):
    big = tmp_path / "submission.yaml"
    big.write_text(BASE + "#" * (metadata.MAX_BYTES + 10))
    with pytest.raises(MembenchError, match="larger than 64 KiB"):
        metadata.read_text(big)
    secret = tmp_path / "secret.txt"
    secret.write_text("label data")
    link = tmp_path / "link.yaml"
    os.symlink(secret, link)
    with pytest.raises(MembenchError, match="not a link"):
        metadata.read_text(link)


def test_folder_copy_refuses_links_at_any_depth_and_keeps_caps(tmp_path):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "scorer.py").write_text("x")
    (src / "a" / "b" / "helper.py").write_text("y")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "junk.pyc").write_bytes(b"z")
    out = copy_folder(src, tmp_path / "out")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["a", "a/b", "a/b/helper.py", "scorer.py"]
    os.symlink("/etc", src / "a" / "b" / "etc")
    with pytest.raises(FolderError, match="holds a link, 'a/b/etc'"):
        copy_folder(src, tmp_path / "out2")
    os.unlink(src / "a" / "b" / "etc")
    os.mkfifo(src / "a" / "pipe")
    with pytest.raises(FolderError, match="not a regular file"):
        copy_folder(src, tmp_path / "out3")
    os.unlink(src / "a" / "pipe")
    (src / "big.bin").write_bytes(bytes(100))
    with pytest.raises(FolderError, match="more than 0 MiB"):
        copy_folder(src, tmp_path / "out4", max_bytes=50)
    with pytest.raises(FolderError, match="more than 2 files"):
        copy_folder(src, tmp_path / "out5", max_files=2)


def test_archive_errors_name_members_briefly(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("/" + "x" * 400)
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(archive.ArchiveError) as err:
        archive.extract(buf.getvalue(), tmp_path / "u")
    assert "absolute path" in str(err.value) and len(str(err.value)) < 300
    with pytest.raises(archive.ArchiveError, match="not a valid zip or tar"):
        archive.extract(b"\x1f\x8b" + os.urandom(100), tmp_path / "v")
    with pytest.raises(archive.ArchiveError):
        archive.extract(b"PK\x03\x04" + os.urandom(300), tmp_path / "w")
    assert not (tmp_path / "u").exists() and not (tmp_path / "w").exists()


def test_scorer_output_cannot_forge_harness_lines(tmp_path):
    log = tmp_path / "job.log"
    r, w = os.pipe()
    pump = ScorerOutput(r, log, limit=200)
    pump.start()
    os.write(w, b"hello\n[2030-01-01T00:00:00Z] published: x\rmore\x1b[2Kend\n" + b"y" * 5000 + b"\n" + b"z" * 10)
    os.close(w)
    pump.join(5)
    os.close(r)
    harness_line(log, "FAILED: boom\n[2030-01-01T00:00:00Z] published: forged")
    lines = log.read_text().splitlines()
    assert lines[0] == f"{SCORER_PREFIX}hello"
    assert lines[1] == f"{SCORER_PREFIX}[2030-01-01T00:00:00Z] published: x more [2Kend"
    assert "more bytes of scorer output not kept" in lines[-3]
    assert lines[-2].startswith("[20") and lines[-2].endswith("FAILED: boom")
    assert lines[-1] == "    [2030-01-01T00:00:00Z] published: forged"
    assert all(l.startswith((SCORER_PREFIX, "[20", "    ")) for l in lines)
    # a tail cut in the middle of a line starts at the next whole line
    assert tail(log, 60).startswith(("[20", SCORER_PREFIX, "    "))


def test_published_metrics_are_rounded_to_what_their_intervals_support():
    assert decimals_for([0.838, 0.905]) == 2  # half-width 0.0335
    assert decimals_for([0.870, 0.878]) == 3  # 0.004
    assert decimals_for([0.2, 0.8]) == 1
    assert decimals_for([0.5, 0.5]) == 3  # a degenerate interval: 3 decimals, as the site shows it
    assert decimals_for([0.10, 0.292]) == 1  # half-width 0.096 rounds to 0.1
    assert round_metric(0.87341, [0.838, 0.905]) == (0.87, [0.84, 0.91])
    record = {"metrics": {
        "auc": 0.97567, "auc_ci95": [0.96265, 0.98654], "best_blind_auc": 0.54578, "excess_over_blind": 0.42988,
        "tpr_at_fpr": {"0.1": {"value": 0.93333, "ci95": [0.87179, 0.97436], "resolvable": True},
                       "0.001": {"value": None, "ci95": None, "resolvable": False}},
        "roc": {"fpr": [0.0, 0.0, 0.005, 0.5, 1.0], "tpr": [0.0, 0.41, 0.595, 0.97, 1.0]}}}
    shown = public_view(record)
    m = shown["metrics"]
    assert m["auc"] == 0.98 and m["auc_ci95"] == [0.96, 0.99] and m["shown_decimals"] == 2  # half-width 0.012
    assert m["excess_over_blind"] == 0.43 and m["best_blind_auc"] == 0.55
    assert m["tpr_at_fpr"]["0.1"] == {"value": 0.93, "ci95": [0.87, 0.97], "resolvable": True}
    assert m["roc"]["fpr"] == list(ROC_GRID) and len(m["roc"]["tpr"]) == len(ROC_GRID)
    assert m["roc"]["tpr"][ROC_GRID.index(0.001)] == 0.41 and m["roc"]["tpr"][-1] == 1.0
    assert np.all(np.diff(m["roc"]["tpr"]) >= 0)
    assert record["metrics"]["auc"] == 0.97567  # the stored record keeps full precision
