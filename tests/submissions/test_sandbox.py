"""The sandbox's protocol side: capabilities through the proxy, metered; undeclared ones refused
with a message that names the capability; a machine without the jail refuses unless allowed;
the wire format carries only plain arrays; the jail's pieces are really there."""

from __future__ import annotations

import json
import os
import socket
import struct

import numpy as np
import process_helpers
import pytest

from benchmark.attacks import ModelAccess
from benchmark.features import TokenStats
from benchmark.submissions import Limits, SandboxError, isolation_problem, run_scorer
from benchmark.submissions import jail
from benchmark.submissions import wire
from benchmark.submissions.capability_server import CapabilityServer
from benchmark.submissions.sandboxed import check_used, describe_usage

SCORER = """\
import os
import numpy as np
from benchmark.api import Scorer

class T(Scorer):
    name = "t"
    requires = {requires}

    def score(self, inputs):
{body}
"""

needs_jail = pytest.mark.skipif(isolation_problem() is not None, reason=f"no full jail here: {isolation_problem()}")


class FakeAccess(ModelAccess):
    """A ModelAccess with a deterministic 'model': log p of a token = -(its length)."""

    def __init__(self):
        self.usage = {"target_forward_tokens": 0, "generated_tokens": 0}

    def logprobs(self, texts):
        per = [{k: -np.array([len(w) for w in t.split()], np.float32) for k in ("logprob", "entropy", "mu", "sigma")}
               for t in texts]
        self.usage["target_forward_tokens"] += sum(len(t.split()) for t in texts)
        return TokenStats.from_lists(per, [len(t.split()) + 1 for t in texts])

    def tokenize(self, texts):
        return [[len(w) for w in t.split()] for t in texts]

    def generate(self, prompts, max_new_tokens):
        self.usage["generated_tokens"] += max_new_tokens * len(prompts)
        return [p[::-1] for p in prompts]


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
    assert check_used(type("S", (), {"capabilities": ("logprobs",)})(), run) == []


def test_generate_meters_its_prompt_tokens_as_forward_tokens(tmp_path):
    d = _write(tmp_path, '("generate",)', "out = inputs.access.generate(['one two three', 'four'], 5)\n"
               "assert out == ['eerht owt eno', 'ruof'], out\nreturn np.zeros(len(inputs.texts))")
    server = CapabilityServer(FakeAccess())
    run = run_scorer(d, uids=UIDS, texts=TEXTS, declared=("generate",), access=server,
                     log_path=tmp_path / "log", allow_unsandboxed=True)
    assert run.usage["target_forward_tokens"] == 4 and run.usage["generated_tokens"] == 10


def test_undeclared_capability_is_refused_even_if_the_scorer_swallows_it(tmp_path):
    d = _write(tmp_path, '("features",)', "try:\n    inputs.access.logprobs(inputs.texts)\nexcept PermissionError as e:\n"
               "    print('refused:', e)\nreturn np.zeros(len(inputs.texts))")
    server = CapabilityServer(FakeAccess())
    run = run_scorer(d, uids=UIDS, texts=TEXTS, declared=("features",), access=server,
                     log_path=tmp_path / "log", allow_unsandboxed=True)
    assert run.refused == ["logprobs"] and server.access.usage["target_forward_tokens"] == 0
    log = (tmp_path / "log").read_text()
    assert "access.logprobs(), which needs capability 'logprobs', but did not declare it" in log
    assert "`requires` in scorer.py" in log and "`capabilities` in submission.yaml" in log
    with pytest.raises(SandboxError, match="did not declare: logprobs.*add logprobs to `requires`"):
        check_used(type("S", (), {"capabilities": ("features",)})(), run)


def test_a_scorer_without_model_access_is_told_what_to_declare(tmp_path):
    """No capability declared at all: the call still reaches the harness (never a
    'NoneType has no attribute' error) and the error names the capability to declare."""
    d = _write(tmp_path, "()", "inputs.access.logprobs(inputs.texts)\nreturn np.zeros(len(inputs.texts))")
    with pytest.raises(SandboxError) as err:
        run_scorer(d, uids=UIDS, texts=TEXTS, declared=(), log_path=tmp_path / "log", allow_unsandboxed=True)
    assert err.value.kind == "capabilities"
    assert "needs capability 'logprobs'" in str(err.value) and "NoneType" not in str(err.value)


def test_usage_has_one_wording():
    assert describe_usage(("features",), [], {"calls": {}}) == "capabilities used: features"
    assert describe_usage((), [], {}) == "capabilities used: none (text only)"
    text = describe_usage(("features", "logprobs"), ["logprobs"],
                          {"target_forward_tokens": 12, "generated_tokens": 0, "calls": {"logprobs": 2}})
    assert text == "capabilities used: features, logprobs; calls: logprobs x2; metered: target_forward_tokens=12"


def test_features_arrive_as_data(tmp_path):
    d = _write(tmp_path, '("features",)', "return np.array([inputs.features.sample(i)['logprob'].sum() "
               "for i in range(len(inputs.uids))], dtype=float)")
    stats = FakeAccess().logprobs(TEXTS)
    run = run_scorer(d, uids=UIDS, texts=TEXTS, features=stats, declared=("features",),
                     log_path=tmp_path / "log", allow_unsandboxed=True)
    np.testing.assert_allclose(run.scores, [-6, -5, -14])


def test_no_jail_refuses_unless_allowed_and_names_the_missing_piece(tmp_path, monkeypatch):
    d = _write(tmp_path, "()", "return np.zeros(len(inputs.texts))")
    monkeypatch.setattr(jail, "missing", lambda: ("bwrap: bubblewrap is not installed (apt-get install bubblewrap)",))
    with pytest.raises(SandboxError, match="cannot jail a scorer; missing: bwrap: bubblewrap is not installed") as err:
        run_scorer(d, uids=UIDS, texts=TEXTS, declared=(), log_path=tmp_path / "log")
    assert "--allow-unsandboxed" in str(err.value)
    run = run_scorer(d, uids=UIDS, texts=TEXTS, declared=(), log_path=tmp_path / "log", allow_unsandboxed=True)
    assert not run.sandboxed and list(run.scores) == [0, 0, 0] and run.jail["pieces"] == []
    assert "NOT FULLY JAILED" in (tmp_path / "log").read_text()


@needs_jail
def test_jailed_run_has_every_piece(tmp_path):
    """In the jail: its own uid on the host (shown in uid_map), a PID namespace of its own,
    only /tmp writable, the submission read-only, no inherited descriptor but the socket."""
    d = _write(tmp_path, "()", "import json\n"
               "facts = {'uid': os.getuid(), 'map': open('/proc/self/uid_map').read().split(),\n"
               "         'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),\n"
               "         'cwd': os.getcwd(), 'fds': sorted(os.listdir('/proc/self/fd')),\n"
               "         'root': sorted(os.listdir('/')),\n"
               "         'status': dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines()\n"
               "                        if l.startswith(('NoNewPrivs', 'Seccomp', 'CapEff', 'CapBnd')))}\n"
               "missing = []\n"
               "for mod in ('torch', 'transformers', 'boto3', 'yaml', 'pydantic', 'benchmark.suite', 'benchmark.submissions',\n"
               "            'benchmark.features', 'benchmark.attacks', 'benchmark.api'):\n"
               "    try:\n        __import__(mod)\n    except ImportError:\n        missing.append(mod)\n"
               "facts['missing'] = missing\n"
               "open('scratch.txt', 'w').write('ok')\n"
               "try:\n    open('/submission/evil.py', 'w')\nexcept OSError as e:\n    facts['sub_write'] = e.errno\n"
               "print('FACTS', json.dumps(facts))\nreturn np.zeros(len(inputs.texts))")
    run = run_scorer(d, uids=UIDS, texts=TEXTS, declared=(), log_path=tmp_path / "log", limits=Limits(wall_s=60))
    assert run.sandboxed and run.jail["pieces"] == list(jail.PIECES)
    line = next(l for l in (tmp_path / "log").read_text().splitlines() if "FACTS" in l)
    facts = json.loads(line.split("FACTS ", 1)[1])
    assert facts["uid"] == jail.JAIL_UID and facts["pids"][0] == 1 and max(facts["pids"]) < 10
    assert facts["cwd"] == "/tmp" and facts["sub_write"] == 30  # read-only file system
    assert len(facts["fds"]) <= 5  # 0, 1, 2, the socket, and listdir's own
    assert facts["missing"] == ["torch", "transformers", "boto3", "yaml", "pydantic", "benchmark.suite",
                                "benchmark.submissions", "benchmark.features", "benchmark.attacks"]  # benchmark.api is there
    status = {k: v.strip() for k, v in facts["status"].items()}
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"  # no new privileges; a filter
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0  # no capability at all
    assert set(facts["root"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc", "root",
                                  "sbin", "submission", "tmp", "usr", "home", "work"}
    assert not (d / "scratch.txt").exists()


def _pair():
    a, b = socket.socketpair()
    return a, wire.Channel(b, deadline=__import__("time").monotonic() + 5)


def _raw(header: dict, *blobs) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack(">Q", len(head)) + head + b"".join(struct.pack(">Q", len(b)) + b for b in blobs)


def test_protocol_carries_plain_arrays_only():
    a, ch = _pair()
    try:
        wire.Channel(a).send({"op": "result"}, {"scores": np.arange(3.0)})
        header, arrays = ch.recv()
        assert header["op"] == "result" and list(arrays["scores"]) == [0, 1, 2]
        a.sendall(_raw({"op": "result", "arrays": [{"name": "scores", "dtype": "|O", "shape": [1]}]}, b"x" * 8))
        with pytest.raises(wire.ProtocolError, match="dtype must be one of"):
            ch.recv()
    finally:
        a.close()
        ch.close()


@pytest.mark.parametrize("header, blobs, message", [
    ({"op": "result", "arrays": [{"name": "scores", "dtype": "<f8", "shape": [1 << 36]}]}, (), "exceeds the cap"),
    ({"op": "result", "arrays": [{"name": "scores", "dtype": "<f8", "shape": [3]}]}, (b"x" * 16,),
     "array 'scores'"),
    ({"op": "result", "arrays": "nope"}, (), "'arrays' must be a list"),
])
def test_protocol_refuses_lying_array_headers(header, blobs, message):
    a, ch = _pair()
    try:
        a.sendall(_raw(header, *blobs))
        with pytest.raises(wire.ProtocolError, match=message):
            ch.recv()
    finally:
        a.close()
        ch.close()


def test_protocol_frame_and_run_caps():
    a, b = socket.socketpair()
    ch = wire.Channel(b, deadline=__import__("time").monotonic() + 5, caps=wire.Caps(max_header=100, max_run=300))
    try:
        a.sendall(struct.pack(">Q", 1 << 40))
        with pytest.raises(wire.TooLarge, match="message header of 1099511627776 bytes"):
            ch.recv()
    finally:
        a.close()
        ch.close()


def test_every_message_field_is_checked_in_one_place():
    ok = wire.check_message({"op": "call", "method": "logprobs", "kwargs": {"texts": ["a"]}}, {})
    assert ok["method"] == "logprobs"
    for header, message in [
        ({"op": "call", "method": "logprobs", "kwargs": ["a"]}, "field 'kwargs' must be an object"),
        ({"op": "call", "method": 3, "kwargs": {}}, "field 'method' must be a string"),
        ({"op": "call", "kwargs": {}}, "lacks field 'method'"),
        ({"op": "launch"}, "unknown message op"),
        ({"op": "loaded", "class": "C", "name": "n", "version": "1", "requires": "features"}, "'requires' must be a list"),
        ({"op": "result", "extra": 1}, "unexpected field"),
    ]:
        with pytest.raises(wire.ProtocolError, match=message):
            wire.check_message(header, {})
    with pytest.raises(wire.ProtocolError, match="must carry arrays"):
        wire.check_message({"op": "loaded", "class": "C", "name": "n", "version": "1", "requires": []},
                               {"x": np.zeros(1)})


def test_capability_arguments_are_capped():
    with pytest.raises(ValueError, match="'prefix' must be at most 32000 characters"):
        wire.check_call("conditional_logprobs", {"prefix": "x" * 100_000, "texts": ["a"]})
    with pytest.raises(ValueError, match="'texts' must hold at most 1024 items"):
        wire.check_call("logprobs", {"texts": ["a"] * 2000})
    with pytest.raises(ValueError, match="'max_new_tokens' must be an integer in 1..256"):
        wire.check_call("generate", {"prompts": ["a"], "max_new_tokens": 10_000})
    with pytest.raises(ValueError, match="unexpected argument"):
        wire.check_call("logprobs", {"texts": ["a"], "extra": 1})


def test_check_scores_allows_nan_only_without_scored_tokens():
    from benchmark.submissions import check_scores

    assert np.isnan(check_scores(np.array([1.0, np.nan]), 2, np.array([3, 0]))[1])
    with pytest.raises(SandboxError, match="non-finite"):
        check_scores(np.array([1.0, np.nan]), 2, np.array([3, 4]))
    with pytest.raises(SandboxError, match="expected \\(3,\\)"):
        check_scores(np.zeros((3, 1)), 3)


def test_token_ids_cross_the_protocol():
    """DC-PDD-style submitted scorers need the scored token ids, not only the statistics."""
    per_sample = [
        {"logprob": np.array([-1.0, -2.0]), "entropy": np.ones(2), "mu": -np.ones(2),
         "sigma": np.ones(2), "token_id": np.array([5, 7])},
        {"logprob": np.array([-3.0]), "entropy": np.ones(1), "mu": -np.ones(1),
         "sigma": np.ones(1), "token_id": np.array([9])},
    ]
    stats = TokenStats.from_lists(per_sample, [3, 2])
    a, ch = _pair()
    try:
        wire.Channel(a).send({"op": "init"}, wire.stats_to_arrays(stats, "f_"))
        _, arrays = ch.recv()
    finally:
        a.close()
        ch.close()
    back = TokenStats(**wire.arrays_to_stats_kwargs(arrays, "f_"))
    np.testing.assert_array_equal(back.token_ids, [5, 7, 9])
    np.testing.assert_array_equal(back.sample(1)["token_id"], [9])


def test_the_sandbox_sees_only_the_interface_of_the_harness(tmp_path):
    """The sandbox's `benchmark` package is benchmark/api/ as it is (with the error type and the
    package's __init__), bound over empty mount points: nothing is copied or generated, and
    the interface imports nothing of the harness beyond benchmark.errors, nor torch or pandas."""
    import ast
    import sys

    from benchmark.submissions.jail import view

    package = view.PACKAGE_ROOT / "benchmark"
    assert [host for host, _ in view.interface_entries()] == [str(package / "__init__.py"), str(package / "errors.py"),
                                                              str(package / "api")]
    dest = view.write_view(tmp_path / "view")
    lib = dest / "lib" / "benchmark"
    assert sorted(p.name for p in lib.iterdir()) == ["__init__.py", "api", "errors.py"]
    assert not any((lib / "api").iterdir()) and (lib / "errors.py").stat().st_size == 0  # mount points only
    allowed = set(sys.stdlib_module_names) | {"numpy", "benchmark"}
    for path in [package / "__init__.py", package / "errors.py", *sorted((package / "api").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [] if node.level == 1 else [node.module or ""]
                if node.level == 2:
                    assert node.module == "errors", f"{path.name} imports ..{node.module}: the jail has only errors.py"
                    continue
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}, which the sandbox does not have"
                assert not name.startswith("benchmark.") or name == "benchmark.errors", f"{path.name} imports {name}"
    assert os.path.basename(view.python_binary()).startswith("python")


HARNESS = """
import sys
from pathlib import Path
from benchmark.submissions import Limits, run_scorer
run_scorer(Path(sys.argv[1]), uids=["a"], texts=["x"], declared=(), log_path=Path(sys.argv[2]),
           limits=Limits(wall_s=120))
"""


@needs_jail
def test_a_killed_harness_takes_its_run_along_and_the_next_worker_sweeps_the_rest(tmp_path):
    """SIGKILL the harness mid-run: the sandbox dies with it (--die-with-parent, the PID
    namespace), and what the harness could not clean (its scratch folder, its cgroup) is
    removed by the sweep a worker does when it starts."""
    import signal
    import subprocess
    import sys
    import time

    from benchmark.home import scratch_dir

    d = _write(tmp_path, "()", "print('started', flush=True)\nimport time\ntime.sleep(120)\nreturn np.zeros(1)")
    log = tmp_path / "log"
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(d), str(log)], start_new_session=True)
    deadline = time.monotonic() + 120
    while "scorer| started" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline and harness.poll() is None, "the run did not start"
        time.sleep(0.1)
    sandboxed = [str(p) for p in process_helpers.descendants(harness.pid)  # this harness's, no other run's
                 if (process_helpers.uid_of(p) or 0) >= jail.uids.UID_BASE]
    assert sandboxed
    os.killpg(harness.pid, signal.SIGKILL)
    harness.wait(timeout=30)
    deadline = time.monotonic() + 30
    while [p for p in sandboxed if os.path.exists(f"/proc/{p}")]:
        assert time.monotonic() < deadline, "sandbox processes outlived their harness"
        time.sleep(0.1)
    left = [p for p in scratch_dir("sandbox").glob(f"*-{harness.pid}-*")]
    assert left  # the harness had no chance to clean up...
    swept = jail.sweep()
    assert swept["scratch"] >= len(left) and swept["cgroups"] >= 1  # ...the sweep does
    assert not [p for p in scratch_dir("sandbox").glob(f"*-{harness.pid}-*")]

