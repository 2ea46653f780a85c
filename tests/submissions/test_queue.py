"""Uploads, the queue's claim/lease/finish rules, and the HTTP endpoints (in-process)."""

from __future__ import annotations

import io
import stat
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from submission_helpers import run_spec

from benchmark.submissions import api_tokens
from benchmark.submissions import archive
from benchmark.submissions.api import create_app
from benchmark.submissions.queue import Queue

YAML = b'name: ok_sub\nversion: "1"\nauthors: [t]\ndescription: d\nthreat_model: none\ncapabilities: []\n'
SCORER = b"import numpy as np\nfrom benchmark.api import Scorer\n"


def _zip(members: dict, symlinks=()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def _tar(members: dict, mode="w:gz", links=()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    return buf.getvalue()


GOOD = {"sub/scorer.py": SCORER, "sub/submission.yaml": YAML}


def test_good_archives_extract_to_the_folder(tmp_path):
    root = archive.extract(_zip(GOOD), tmp_path / "z")
    assert root == tmp_path / "z" / "sub" and (root / "scorer.py").read_bytes() == SCORER
    root = archive.extract(_tar({"scorer.py": SCORER, "submission.yaml": YAML}), tmp_path / "t")
    assert root == tmp_path / "t" and (root / "submission.yaml").read_bytes() == YAML


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("zip ../", _zip({**GOOD, "../evil.py": b"x"}), "leaves the folder"),
        ("zip nested ../", _zip({**GOOD, "sub/../../evil.py": b"x"}), "leaves the folder"),
        ("zip absolute", _zip({**GOOD, "/tmp/evil.py": b"x"}), "absolute path"),
        ("zip symlink", _zip(GOOD, symlinks=[("sub/link", "/etc/passwd")]), "symbolic link"),
        ("tar ../", _tar({**GOOD, "../evil.py": b"x"}), "leaves the folder"),
        ("tar absolute", _tar({**GOOD, "/tmp/evil.py": b"x"}), "absolute path"),
        ("tar symlink", _tar(GOOD, links=[("sub/link", "/etc/passwd", tarfile.SYMTYPE)]), "is a link"),
        ("tar hardlink", _tar(GOOD, links=[("sub/link", "/etc/passwd", tarfile.LNKTYPE)]), "is a link"),
        ("zip bomb", _zip({**GOOD, "sub/zeros.bin": bytes(64 << 20)}), "decompression bomb"),
        ("tar.gz bomb", _tar({**GOOD, "sub/zeros.bin": bytes(64 << 20)}), "decompression bomb"),
        ("no scorer", _zip({"sub/submission.yaml": YAML}), "no scorer.py"),
        ("not an archive", b"hello, this is not an archive", "not a valid zip or tar"),
    ],
)
def test_bad_archives_are_refused_and_leave_nothing(tmp_path, name, data, message):
    dest = tmp_path / "x" / "upload"
    with pytest.raises(archive.ArchiveError, match=message):
        archive.extract(data, dest)
    assert not dest.exists() and not (tmp_path / "x" / "evil.py").exists()


def test_bomb_with_lying_headers_is_refused(tmp_path):
    data = _zip({**GOOD, "sub/zeros.bin": bytes(64 << 20)})
    # rewrite the declared sizes (central directory and local header) to a small number: the
    # zip reader stops at the declared size, and the CRC of the truncated member then fails
    real = (64 << 20).to_bytes(4, "little")
    forged = data.replace(real, (1000).to_bytes(4, "little"))
    assert forged != data
    with pytest.raises(archive.ArchiveError, match="corrupt"):
        archive.extract(forged, tmp_path / "u")
    assert not (tmp_path / "u").exists()


@pytest.mark.parametrize("pack", [_zip, _tar])
def test_many_small_members_are_stopped_while_extracting(tmp_path, pack):
    """Each member is under every per-member limit; the running total is what stops them."""
    members = {**GOOD, **{f"sub/part{i}.bin": bytes(1 << 20) for i in range((archive.MAX_TOTAL >> 20) + 1)}}
    with pytest.raises(archive.ArchiveError, match="expands past"):
        archive.extract(pack(members), tmp_path / "u")
    assert not (tmp_path / "u").exists()


def test_oversized_upload_is_refused(tmp_path):
    with pytest.raises(archive.ArchiveError, match="exceeds"):
        archive.extract(b"PK\x03\x04" + bytes(archive.MAX_UPLOAD), tmp_path / "u")


def _folder(tmp_path) -> Path:
    d = tmp_path / "sub"
    d.mkdir(exist_ok=True)
    (d / "scorer.py").write_bytes(SCORER)
    (d / "submission.yaml").write_bytes(YAML)
    return d


def test_expired_lease_returns_the_job_and_fences_the_old_worker(tmp_path):
    q = Queue(tmp_path / "q")
    job_id = q.submit_folder(_folder(tmp_path), split="demo/pydoc", target="demo/neox-tiny")
    assert q.get(job_id)["name"] == "ok_sub"
    first = q.claim("w1", lease_s=0.2)
    assert first.id == job_id and q.claim("w2", lease_s=0.2) is None  # held
    assert q.get(job_id)["status"] == "running"
    time.sleep(0.3)
    second = q.claim("w2", lease_s=30)
    assert second.id == job_id and second.attempts == 2
    assert not q.heartbeat(first, 30)  # w1 lost it
    assert not q.finish(first, "done")  # and cannot complete it
    assert q.finish(second, "done", result={"auc": 0.5})
    assert not q.finish(second, "done")  # never twice
    kinds = [e["kind"] for e in q.events(job_id)]
    assert kinds == ["submitted", "claimed", "lease_expired", "claimed", "done"]
    assert q.get(job_id)["status"] == "done" and q.unpublished() == [job_id]


def test_a_job_that_keeps_killing_workers_fails_after_max_attempts(tmp_path):
    q = Queue(tmp_path / "q", max_attempts=2)
    job_id = q.submit_folder(_folder(tmp_path), split="demo/pydoc", target="demo/neox-tiny")
    for _ in range(2):
        assert q.claim("w", lease_s=0.05) is not None
        time.sleep(0.1)
    assert q.claim("w", lease_s=0.05) is None
    job = q.get(job_id)
    assert job["status"] == "failed" and "stopped 2 times" in job["error"]


def test_wal_mode(tmp_path):
    import sqlite3

    q = Queue(tmp_path / "q")
    assert sqlite3.connect(q.db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.fixture
def client(tmp_path):
    app = create_app(tmp_path / "q")
    secret, _ = api_tokens.add(app.state.submission_queue, "tester")
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as c:
        yield c, app.state.submission_queue


def test_post_then_get(client):
    c, q = client
    r = c.post("/api/submissions", content=_zip(GOOD), headers={"content-type": "application/zip"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    got = c.get(r.json()["url"]).json()
    assert got["status"] == "pending" and got["name"] == "ok_sub" and got["log"] == "" and got["owner"] == "tester"
    assert c.get("/api/submissions").json()["pending"] == 1
    job = q.claim("w", 30)
    q.finish(job, "failed", error="the scorer raised RuntimeError while scoring: boom")
    job.log_path.write_text("FAILED: boom\n")
    got = c.get(f"/api/submissions/{job_id}").json()
    assert got["status"] == "failed" and "boom" in got["error"] and "FAILED" in got["log"]


def test_post_refusals(client):
    c, q = client
    bad = c.post("/api/submissions", content=_zip({**GOOD, "../evil.py": b"x"}))
    assert bad.status_code == 400 and "leaves the folder" in bad.json()["detail"]
    big = c.post("/api/submissions", content=bytes(archive.MAX_UPLOAD + 1))
    assert big.status_code == 413
    split = c.post("/api/submissions?split=nope/nope", content=_zip(GOOD))
    assert split.status_code == 422 and "unknown split" in split.json()["detail"]
    assert c.get("/api/submissions/0123abcd").status_code == 404
    assert c.post("/api/submissions", content=_zip(GOOD), headers={"Authorization": "Bearer nope"}).status_code == 401
    assert q.counts()["pending"] == 0


def test_the_site_app_serves_the_submission_endpoints(tmp_path):
    from benchmark.server import create_app as site_app

    app = site_app(tmp_path / "site", tmp_path / "results")
    app.state.submission_queue = Queue(tmp_path / "q")
    secret, _ = api_tokens.add(app.state.submission_queue, "tester")
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as c:
        r = c.post("/api/submissions", content=_zip(GOOD))
        assert r.status_code == 201 and c.get(r.json()["url"]).json()["status"] == "pending"


def test_a_job_done_but_not_published_is_published_by_the_next_worker(tmp_path):
    """The worker died between finishing a job and publishing it: the next one publishes it."""
    from benchmark import results
    from benchmark.submissions import evaluate, isolation_problem
    from benchmark.submissions.worker import WorkerConfig, serve

    if isolation_problem() is not None:
        pytest.skip("no full jail here")
    d = _folder(tmp_path)
    (d / "scorer.py").write_text(
        "import numpy as np\nfrom benchmark.api import Scorer\n\nclass S(Scorer):\n    name = 'ok_sub'\n"
        "    requires = ()\n\n    def score(self, inputs):\n        return np.array([len(t) for t in inputs.texts], float)\n")
    q = Queue(tmp_path / "q")
    job_id = q.submit_folder(d, split="demo/pydoc", target="demo/neox-tiny")
    job = q.claim("dead-worker", 30)
    evaluate(job.folder, run_spec("demo/pydoc", "demo/neox-tiny", job.dir / "results"), log_path=job.log_path)
    assert q.finish(job, "done")  # ... and the worker dies here, before publishing
    published = tmp_path / "published"
    assert serve(q, WorkerConfig(results_dir=published), exit_when_empty=True) == 0
    assert [r["scorer"]["name"] for _, r in results.iter_records(published)] == ["ok_sub"]
    assert q.get(job_id)["published"] and q.unpublished() == []


def test_tokens_command_adds_lists_and_revokes(tmp_path, capsys):
    import json

    from benchmark.cli import main

    q = ["tokens", "--queue", str(tmp_path / "q")]
    assert main([*q, "add", "alice-lab", "--per-day", "5", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["token"].startswith("mbt_") and made["per_day"] == 5 and made["active"]
    assert api_tokens.authenticate(Queue(tmp_path / "q"), made["token"]).name == "alice-lab"
    assert main([*q, "list"]) == 0
    listed = capsys.readouterr().out
    assert "alice-lab" in listed and made["token"] not in listed
    assert main([*q, "revoke", "alice-lab", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == made["id"]
    assert api_tokens.authenticate(Queue(tmp_path / "q"), made["token"]) is None
    assert main([*q, "add", "Bad Name"]) == 2 and "not a valid submitter name" in capsys.readouterr().err
    assert main([*q, "revoke", "nobody"]) == 2


def test_publishing_keeps_the_per_sample_columns(tmp_path):
    """A staged record's per-sample file (the scores and e.g. the truncation flags) is published
    whole, not cut down to uid and score."""
    import numpy as np
    import pandas as pd

    from benchmark import results
    from synthetic_results import synthetic_record
    from benchmark.submissions.worker import WorkerConfig, publish

    q = Queue(tmp_path / "q")
    job_id = q.submit_folder(_folder(tmp_path), split="demo/pydoc", target="demo/neox-tiny")
    record, uids, scores = synthetic_record("demo/pydoc", "demo/neox-tiny", "staged", n=40)
    truncated = np.arange(len(uids)) % 3 == 0
    results.write(q.job_dir(job_id) / "results", record, uids, scores, columns={"truncated": truncated})
    published = tmp_path / "published"
    written = publish(q, job_id, WorkerConfig(results_dir=published))
    (path,) = map(Path, written)
    table = pd.read_parquet(path.with_name(results.read(path)["per_sample"]["file"]))
    assert table["truncated"].tolist() == truncated.tolist() and table["score"].tolist() == list(scores)


def test_a_private_split_has_a_quota_per_owner_and_day(tmp_path, monkeypatch):
    """Each upload to a private split queries its secret labels (the Ladder answers them): at
    most PRIVATE_SPLIT_PER_DAY per owner and split in any 24 hours, refused with 429 naming the
    quota and when it frees one; a public split, and another owner, are not held back."""
    from benchmark.submissions import queue as queue_module

    app = create_app(tmp_path / "q")
    q = app.state.submission_queue
    alice, _ = api_tokens.add(q, "alice", per_day=100)
    bob, _ = api_tokens.add(q, "bob", per_day=100)
    private = "/api/submissions?split=demo/pydoc-private&target=demo/neox-tiny-private"
    quota = queue_module.PRIVATE_SPLIT_PER_DAY
    with TestClient(app) as c:
        def post(url, who):
            return c.post(url, content=_zip({"scorer.py": SCORER, "submission.yaml": YAML}),
                          headers={"Authorization": f"Bearer {who}"})

        codes = [post(private, alice).status_code for _ in range(quota + 1)]
        assert codes == [201] * quota + [429]
        refused = post(private, alice)
        detail = refused.json()["detail"]
        assert f"the quota is {quota} per private split per day" in detail and "demo/pydoc-private" in detail
        assert "frees one at" in detail and " UTC" in detail and 0 < int(refused.headers["retry-after"]) <= 86400
        assert post("/api/submissions?split=demo/pydoc&target=demo/neox-tiny", alice).status_code == 201
        assert post(private, bob).status_code == 201
    assert q.counts()["pending"] == quota + 2
    later = time.time() + queue_module.DAY + 1  # a day on, the quota has freed every slot
    monkeypatch.setattr(queue_module.time, "time", lambda: later)
    job = q.submit_archive(_zip({"scorer.py": SCORER, "submission.yaml": YAML}), split="demo/pydoc-private",
                           target="demo/neox-tiny-private", owner="alice", per_split_day=quota)
    assert q.get(job)["status"] == "pending"
