"""50 concurrent uploads to the server on 127.0.0.1, each processed exactly once, with the
worker killed (SIGKILL) in the middle of the queue and restarted; authentication on (every
upload and status call carries a submitter's token).

The server is the site's FastAPI app (uvicorn in a subprocess, loopback only); the worker is
`membench worker` in a subprocess. Scorers are text-only and the test worker uses 50 bootstrap
resamples instead of 1,000, so the queue, not the metrics, is what costs time here.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from benchmark import results
from benchmark.submissions import api_tokens
from benchmark.submissions import isolation_problem
from benchmark.submissions.queue import Queue

N = 50
REPO = Path(__file__).resolve().parents[2]

SERVER = """
import sys, uvicorn
from pathlib import Path
from benchmark.server import create_app
from benchmark.submissions.queue import Queue
root, port = Path(sys.argv[1]), int(sys.argv[2])
app = create_app(root / "site", root / "published")
app.state.submission_queue = Queue(root / "queue")
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""

WORKER = """
import sys
import benchmark.metrics as metrics
full = metrics.summarize
metrics.summarize = lambda *a, **k: full(*a, **{**k, "n_resamples": 50})  # cheap intervals
from benchmark.cli import main
sys.exit(main(["worker", *sys.argv[1:]]))
"""

SCORER = """\
import zlib
import numpy as np
from benchmark.api import Scorer


class S(Scorer):
    name = "{name}"
    requires = ()

    def score(self, inputs):
        return np.array([-len(zlib.compress(t.encode())) / max(len(t), 1) + {i} for t in inputs.texts])
"""

YAML = """\
name: {name}
version: "1"
authors: ["load test"]
description: text-only scorer number {i}
threat_model: none (text only)
capabilities: []
"""


def _zip(i: int) -> bytes:
    name = f"queued_{i:02d}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}/scorer.py", SCORER.format(name=name, i=i))
        zf.writestr(f"{name}/submission.yaml", YAML.format(name=name, i=i))
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(cond, timeout: float, what: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _worker(root: Path, *extra) -> subprocess.Popen:
    args = ["--queue", str(root / "queue"), "--results-dir", str(root / "published"), "--no-site",
            "--lease", "3", "--poll", "0.2", "--timeout", "60", *extra]
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], cwd=REPO, start_new_session=True,
                            stdout=open(root / "worker.out", "ab"), stderr=subprocess.STDOUT)


@pytest.mark.timeout(600)
@pytest.mark.skipif(isolation_problem() is not None, reason="no full jail here")
def test_fifty_concurrent_submissions_each_processed_exactly_once(tmp_path):
    secret, _ = api_tokens.add(Queue(tmp_path / "queue"), "loadtest", per_day=N)
    auth = {"Authorization": f"Bearer {secret}"}
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path), str(port)], cwd=REPO,
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            try:
                return httpx.get(f"{base}/api/submissions", timeout=2).status_code == 200  # counts: public
            except httpx.HTTPError:
                return False

        _wait(up, 60, "the server to start")

        def post(i):
            with httpx.Client(timeout=60) as c:
                return c.post(f"{base}/api/submissions?split=demo/pydoc&target=demo/neox-tiny",
                              content=_zip(i), headers={"content-type": "application/zip", **auth})

        with ThreadPoolExecutor(max_workers=N) as pool:
            responses = list(pool.map(post, range(N)))
        assert [r.status_code for r in responses] == [201] * N, [r.text for r in responses if r.status_code != 201]
        with httpx.Client(timeout=60) as c:  # the token's day is used up: the next upload waits
            extra = c.post(f"{base}/api/submissions", content=_zip(N), headers=auth)
        assert extra.status_code == 429 and "retry-after" in extra.headers
        ids = [r.json()["id"] for r in responses]
        assert len(set(ids)) == N
        queue = Queue(tmp_path / "queue")
        assert queue.counts()["pending"] == N

        worker = _worker(tmp_path)
        _wait(lambda: queue.counts()["done"] >= 8 and queue.counts()["running"] == 1, 300,
              "the first worker to finish some jobs and hold another")
        os.killpg(worker.pid, signal.SIGKILL)  # mid-job: a job is running
        worker.wait(timeout=30)
        killed_with = queue.counts()
        assert killed_with["running"] == 1 and killed_with["done"] < N

        worker = _worker(tmp_path, "--exit-when-empty")
        assert worker.wait(timeout=420) == 0, (tmp_path / "worker.out").read_text()[-3000:]

        assert queue.counts() == {"pending": 0, "running": 0, "done": N, "failed": 0}
        events = queue.events()
        for job_id in ids:
            kinds = [e["kind"] for e in events if e["job_id"] == job_id]
            assert kinds.count("done") == 1 and kinds.count("published") == 1, (job_id, kinds)
        retried = [j for j in ids if queue.get(j, with_log=False)["attempts"] == 2]
        assert len(retried) == 1  # the job the kill interrupted, taken again after its lease expired
        assert "lease_expired" in [e["kind"] for e in events if e["job_id"] == retried[0]]
        published = sorted(r["scorer"]["name"] for _, r in results.iter_records(tmp_path / "published"))
        assert published == [f"queued_{i:02d}" for i in range(N)]
        assert httpx.get(f"{base}/api/submissions/{retried[0]}", timeout=10).status_code == 401
        status = httpx.get(f"{base}/api/submissions/{retried[0]}", timeout=10, headers=auth).json()
        assert status["status"] == "done" and status["attempts"] == 2 and "published" in status["log"]
        assert {r["scorer"]["owner"] for _, r in results.iter_records(tmp_path / "published")} == {"loadtest"}
    finally:
        for proc in (worker, server):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
