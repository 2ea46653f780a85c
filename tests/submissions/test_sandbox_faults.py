"""Every fault of a submitted scorer: a clear error, nothing published, the worker serves on.

One worker (in-process) takes a queue of faulty submissions followed by a good one; each
faulty job must fail with its own one-line reason, the good one must be done and be the only
result published. Scorers are text-only (no model), so this is cheap.
"""

from __future__ import annotations

import socket
import textwrap
import uuid
from pathlib import Path

import pytest

from benchmark import results, suite
from benchmark.submissions import Limits, isolation_problem
from benchmark.submissions.queue import Queue
from benchmark.commands.worker import publish_hook
from benchmark.submissions.worker import WorkerConfig, serve

GOOD_YAML = """\
name: {name}
version: "1"
authors: ["tester"]
description: a test scorer
threat_model: none (text only)
capabilities: []
"""

SCORER = """\
import os, socket, time
import numpy as np
from benchmark.api import Scorer

class T(Scorer):
    name = "{name}"
    requires = ()

    def score(self, inputs):
        n = len(inputs.texts)
{body}
"""

needs_isolation = pytest.mark.skipif(
    isolation_problem() is not None, reason=f"no full jail here: {isolation_problem()}"
)


def _folder(root: Path, name: str, body: str | None = None, yaml: str | None = None, scorer: str | None = None):
    d = root / name
    d.mkdir()
    if scorer is None:
        scorer = SCORER.format(name=name, body=textwrap.indent(textwrap.dedent(body), " " * 8))
    (d / "scorer.py").write_text(scorer)
    if yaml is not False:
        (d / "submission.yaml").write_text(GOOD_YAML.format(name=name) if yaml is None else yaml)
    return d


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    subs = root / "subs"
    subs.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    labels = suite.ensure("demo/pydoc").path / "labels.parquet"
    escape = Path("/opt") / f"membench-escape-{uuid.uuid4().hex}"  # outside the sandbox's only writable folder
    faults = {
        "raises": ("raise RuntimeError('boom')", "raised RuntimeError while scoring: boom"),
        "returns_nan": ("return np.full(n, np.nan)", "non-finite score"),
        "returns_inf": ("x = np.zeros(n); x[3] = np.inf\nreturn x", "non-finite score"),
        "wrong_length": ("return np.zeros(3)", "shape (3,), expected (64,)"),
        "wrong_type": ("return 'member'", "wrong type"),
        "wrong_dtype": ("return ['a'] * n", "wrong type"),
        "sleeps": ("time.sleep(120)\nreturn np.zeros(n)", "wall-clock timeout"),
        "memory": ("x = bytearray(8 << 30)\nreturn np.zeros(n)", "out of memory"),
        "network": (f"socket.create_connection(('127.0.0.1', {port}), timeout=3)\nreturn np.zeros(n)",
                    "tried to open a network socket"),
        "reads_labels": (f"open({str(labels)!r}, 'rb').read()\nreturn np.zeros(n)", "labels.parquet"),
        "writes_outside": (f"open({str(escape)!r}, 'w').write('x')\nreturn np.zeros(n)", "tried to write outside its scratch folder"),
        "forks": ("kids = []\nfor i in range(100):\n    pid = os.fork()\n    if pid == 0:\n"
                  "        time.sleep(20)\n        os._exit(0)\nreturn np.zeros(n)", "tried to start a process"),
        # a refused fork swallowed, then work left behind in a thread that outlives score()
        "lingers": ("import threading\ntry:\n    os.fork()\nexcept OSError:\n    pass\n"
                    "threading.Thread(target=time.sleep, args=(60,), name='stay').start()\nreturn np.zeros(n)",
                    "returned with 1 thread(s) still running (stay)"),
    }
    folders = {name: _folder(subs, name, body) for name, (body, _) in faults.items()}
    expected = {name: msg for name, (_, msg) in faults.items()}
    folders["syntax_error"] = _folder(subs, "syntax_error", scorer="def score(:\n    pass\n")
    expected["syntax_error"] = "could not be imported: SyntaxError"
    folders["no_yaml"] = _folder(subs, "no_yaml", "return np.zeros(n)", yaml=False)
    expected["no_yaml"] = "has no submission.yaml"
    folders["bad_yaml"] = _folder(subs, "bad_yaml", "return np.zeros(n)", yaml="name: [unclosed\n")
    expected["bad_yaml"] = "is not valid YAML"
    folders["schema"] = _folder(subs, "schema", "return np.zeros(n)",
                                yaml="name: schema\nversion: '1'\ndescription: x\nthreat_model: x\ncapabilities: []\n")
    expected["schema"] = "'authors' is a required property"
    folders["good"] = _folder(subs, "good", "return np.array([float(len(t)) for t in inputs.texts])")

    queue = Queue(root / "queue")
    ids = {name: queue.submit_folder(folder, split="demo/pydoc", target="demo/neox-tiny")
           for name, folder in folders.items()}  # "good" last
    cfg = WorkerConfig(results_dir=root / "published", on_publish=publish_hook(root / "site"), lease_s=30,
                       limits=Limits(memory_mb=1024, wall_s=6, nproc=16, cpu_s=30))
    processed = serve(queue, cfg, exit_when_empty=True)
    try:
        refused_connection = listener.accept()
    except BlockingIOError:
        refused_connection = None
    listener.close()
    yield {"queue": queue, "ids": ids, "expected": expected, "cfg": cfg, "processed": processed, "site": root / "site",
           "connection": refused_connection, "escape": escape}
    escape.unlink(missing_ok=True)


SANDBOX_FAULTS = {"network", "reads_labels", "writes_outside", "forks"}
ALL_FAULTS = ["raises", "returns_nan", "returns_inf", "wrong_length", "wrong_type", "wrong_dtype",
              "sleeps", "memory", "network", "reads_labels", "writes_outside", "forks", "lingers",
              "syntax_error", "no_yaml", "bad_yaml", "schema"]


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_fault_fails_with_clear_error(fault_run, fault):
    if fault in SANDBOX_FAULTS and isolation_problem() is not None:
        pytest.skip(f"no full jail here: {isolation_problem()}")
    job = fault_run["queue"].get(fault_run["ids"][fault])
    assert job["status"] == "failed"
    assert fault_run["expected"][fault] in job["error"]
    assert "\n" not in job["error"]  # one line
    assert job["attempts"] == 1
    assert "FAILED" in job["log"] and not job["published"]


def test_worker_keeps_serving_and_publishes_only_the_good_one(fault_run):
    assert fault_run["processed"] == len(fault_run["ids"])
    good = fault_run["queue"].get(fault_run["ids"]["good"])
    assert good["status"] == "done" and good["published"], good["error"]
    published = [r for _, r in results.iter_records(fault_run["cfg"].results_dir)]
    assert [r["scorer"]["name"] for r in published] == ["good"]
    assert published[0]["scorer"]["kind"] == "submission"
    assert published[0]["submission"]["authors"] == ["tester"]
    assert (fault_run["site"] / "index.html").is_file()  # the publish hook rebuilt the site


@needs_isolation
def test_sandbox_escapes_left_no_trace(fault_run):
    assert fault_run["connection"] is None  # nothing reached the listener on the host's loopback
    assert not fault_run["escape"].exists()


@needs_isolation
def test_scorer_output_goes_to_the_job_log(fault_run):
    log = fault_run["queue"].get(fault_run["ids"]["raises"])["log"]
    assert "RuntimeError: boom" in log  # the traceback, from the scorer's stderr
