"""The sandbox's protocol side: capabilities through the proxy, metered; undeclared ones refused;
no isolation means refusal unless explicitly allowed; the wire format never unpickles."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

from benchmark.attacks import ModelAccess
from benchmark.features import TokenStats
from benchmark.submissions import Limits, SandboxError, isolation_problem, run_scorer, sandbox
from benchmark.submissions import protocol
from benchmark.submissions.access import CapabilityServer
from benchmark.submissions.evaluation import _check_used

SCORER = """\
import os
import numpy as np
from benchmark.attacks import Scorer

class T(Scorer):
    name = "t"
    requires = {requires}

    def score(self, inputs):
{body}
"""


class FakeAccess(ModelAccess):
    """A ModelAccess with a deterministic 'model': log p of a token = -(its length)."""

    def __init__(self):
        self.usage = {"target_forward_tokens": 0}

    def logprobs(self, texts):
        per = [{k: -np.array([len(w) for w in t.split()], np.float32) for k in ("logprob", "entropy", "mu", "sigma")}
               for t in texts]
        self.usage["target_forward_tokens"] += sum(len(t.split()) for t in texts)
        return TokenStats.from_lists(per, [len(t.split()) + 1 for t in texts])


def _write(tmp_path, requires, body):
    d = tmp_path / "sub"
    d.mkdir()
    (d / "scorer.py").write_text(SCORER.format(requires=requires, body="\n".join(" " * 8 + l for l in body.splitlines())))
    return d


TEXTS = ["a bb ccc", "dddd e", "ff ggg hhhh iiiii"]
UIDS = ["u1", "u2", "u3"]


def test_declared_capability_is_served_and_metered(tmp_path):
    d = _write(tmp_path, '("logprobs",)', "s = inputs.access.logprobs([t.upper() for t in inputs.texts])\n"
               "return np.array([s.sample(i)['logprob'].mean() for i in range(len(inputs.texts))])")
    server = CapabilityServer(FakeAccess())
    run = run_scorer(d, uids=UIDS, texts=TEXTS, declared=("logprobs",), access=server,
                     log_path=tmp_path / "log", allow_unsandboxed=True)
    np.testing.assert_allclose(run.scores, [-2.0, -2.5, -3.5])
    assert run.used == ["logprobs"] and run.refused == []
    assert run.usage["target_forward_tokens"] == 9 and run.usage["calls"] == {"logprobs": 1}
    assert _check_used(type("S", (), {"capabilities": ("logprobs",)})(), run) == []


def test_undeclared_capability_is_refused_even_if_the_scorer_swallows_it(tmp_path):
    d = _write(tmp_path, '("features",)', "try:\n    inputs.access.logprobs(inputs.texts)\nexcept PermissionError as e:\n"
               "    print('refused:', e)\nreturn np.zeros(len(inputs.texts))")
    server = CapabilityServer(FakeAccess())
    run = run_scorer(d, uids=UIDS, texts=TEXTS, declared=("features",), access=server,
                     log_path=tmp_path / "log", allow_unsandboxed=True)
    assert run.refused == ["logprobs"] and server.access.usage["target_forward_tokens"] == 0
    assert "capability 'logprobs' was not declared" in (tmp_path / "log").read_text()
    with pytest.raises(SandboxError, match="did not declare: logprobs"):
        _check_used(type("S", (), {"capabilities": ("features",)})(), run)


def test_features_arrive_as_data(tmp_path):
    d = _write(tmp_path, '("features",)', "return np.array([inputs.features.sample(i)['logprob'].sum() "
               "for i in range(len(inputs.uids))], dtype=float)")
    stats = FakeAccess().logprobs(TEXTS)
    run = run_scorer(d, uids=UIDS, texts=TEXTS, features=stats, declared=("features",),
                     log_path=tmp_path / "log", allow_unsandboxed=True)
    np.testing.assert_allclose(run.scores, [-6, -5, -14])


def test_no_isolation_refuses_unless_allowed(tmp_path, monkeypatch):
    d = _write(tmp_path, "()", "return np.zeros(len(inputs.texts))")
    monkeypatch.setattr(sandbox, "isolation_problem", lambda: "unshare: Operation not permitted")
    with pytest.raises(SandboxError, match="cannot isolate a scorer .*unshare") as err:
        run_scorer(d, uids=UIDS, texts=TEXTS, declared=(), log_path=tmp_path / "log")
    assert "--allow-unsandboxed" in str(err.value)
    run = run_scorer(d, uids=UIDS, texts=TEXTS, declared=(), log_path=tmp_path / "log", allow_unsandboxed=True)
    assert not run.sandboxed and list(run.scores) == [0, 0, 0]


@pytest.mark.skipif(isolation_problem() is not None, reason="no namespaces here")
def test_isolated_run_is_unprivileged_in_a_fresh_workdir(tmp_path):
    d = _write(tmp_path, "()", "print('uid', os.getuid(), 'cwd', os.getcwd())\n"
               "open('scratch.txt', 'w').write('ok')\nreturn np.zeros(len(inputs.texts))")
    run = run_scorer(d, uids=UIDS, texts=TEXTS, declared=(), log_path=tmp_path / "log", limits=Limits(wall_s=60))
    log = (tmp_path / "log").read_text()
    assert run.sandboxed and "isolated" in log
    if os.getuid() == 0:
        assert "uid 65534" in log
    assert "cwd /tmp/membench-sandbox-" in log and not list(d.glob("scratch.txt"))


def test_protocol_never_unpickles():
    a, b = socket.socketpair()
    try:
        protocol.send(a.fileno(), {"op": "result"}, {"scores": np.arange(3.0)})
        header, arrays = protocol.recv(b.fileno(), None)
        assert header["op"] == "result" and list(arrays["scores"]) == [0, 1, 2]
        import io
        import struct

        buf = io.BytesIO()
        np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
        head = b'{"op": "result", "arrays": ["scores"]}'
        a.sendall(struct.pack(">Q", len(head)) + head + struct.pack(">Q", len(buf.getvalue())) + buf.getvalue())
        with pytest.raises(protocol.ProtocolError, match="malformed array"):
            protocol.recv(b.fileno(), None)
    finally:
        a.close()
        b.close()


def test_check_scores_allows_nan_only_without_scored_tokens():
    from benchmark.submissions import check_scores

    assert np.isnan(check_scores(np.array([1.0, np.nan]), 2, np.array([3, 0]))[1])
    with pytest.raises(SandboxError, match="non-finite"):
        check_scores(np.array([1.0, np.nan]), 2, np.array([3, 4]))
    with pytest.raises(SandboxError, match="expected \\(3,\\)"):
        check_scores(np.zeros((3, 1)), 3)


@pytest.mark.skipif(os.getuid() != 0 or isolation_problem() is not None, reason="simulates a user from root")
def test_unprivileged_user_isolates_through_a_user_namespace(tmp_path):
    """Started by an ordinary user (simulated: a forked child drops to nobody), isolation
    goes through a user namespace and gives the same confinement."""
    import ctypes
    import tempfile

    from benchmark.submissions.isolation import isolate
    from benchmark.submissions.sandbox import _probe_in_child, python_paths

    work, root = tempfile.mkdtemp(prefix="membench-test-"), tempfile.mkdtemp(prefix="membench-root-")
    for d in (work, root):
        os.chown(d, 65534, 65534)
    out = tmp_path / "out.txt"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)

    def child():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE, as for a process a user starts
        isolate(work, (), Limits(), expose=python_paths(), newroot=root)
        facts = []
        try:
            socket.socket().connect(("127.0.0.1", 22))
        except OSError as exc:
            facts.append(f"net:{exc.errno}")
        try:
            open("/etc/escape", "w")
        except OSError as exc:
            facts.append(f"write:{exc.errno}")
        open("inside.txt", "w").write("ok")
        facts.append("root:" + ",".join(sorted(os.listdir("/"))))
        os.write(fd, " ".join(facts).encode())

    try:
        assert _probe_in_child(child) is None
        facts = out.read_text()
        assert "net:101" in facts and "write:30" in facts
        listing = set(facts.split("root:")[1].split(","))
        # Only system directories and the top folders of what was exposed (Python, the harness
        # package: wherever this checkout lives) are there: no /home, /opt, /mnt or /var.
        import benchmark

        package_top = Path(benchmark.__file__).resolve().parts[1]
        exposed_tops = {Path(p).resolve().parts[1] for p in python_paths()}
        system = {"bin", "dev", "etc", "lib", "lib32", "lib64", "proc", "root", "sbin", "tmp", "usr"}
        assert package_top in listing and listing <= system | exposed_tops
        assert (Path(work) / "inside.txt").read_text() == "ok"
    finally:
        os.close(fd)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        os.rmdir(root)


def test_token_ids_cross_the_protocol():
    """DC-PDD-style submitted scorers need the scored token ids, not only the statistics."""
    from benchmark.features import TokenStats
    from benchmark.submissions import protocol

    per_sample = [
        {"logprob": np.array([-1.0, -2.0]), "entropy": np.ones(2), "mu": -np.ones(2),
         "sigma": np.ones(2), "token_id": np.array([5, 7])},
        {"logprob": np.array([-3.0]), "entropy": np.ones(1), "mu": -np.ones(1),
         "sigma": np.ones(1), "token_id": np.array([9])},
    ]
    stats = TokenStats.from_lists(per_sample, [3, 2])
    back = TokenStats(**protocol.arrays_to_stats_kwargs(protocol.stats_to_arrays(stats, "f_"), "f_"))
    np.testing.assert_array_equal(back.token_ids, [5, 7, 9])
    np.testing.assert_array_equal(back.sample(1)["token_id"], [9])
