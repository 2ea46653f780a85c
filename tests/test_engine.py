"""The warm engine (`membench engine`): a `membench run` handed to it gives the same results as
a fresh process, streams and exit status included; a run it cannot take as a fresh process
would run runs on its own; only its own user is served; a killed client takes its child along;
and `membench` ends without the interpreter's teardown (``exiting.exit_now``) losing nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmark import engine
from benchmark.engine import protocol, server

TEXTS = [f"engine text {i}: " + "a quick brown fox jumps over the lazy dog and runs " * (1 + i % 4) for i in range(24)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A local random tiny GPT-NeoX with a BPE tokenizer trained on the texts."""
    from model_helpers import tiny_neox_folder

    return tiny_neox_folder(tmp_path_factory.mktemp("engine-model"), TEXTS)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("engine-data") / "mine.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": i % 2}) + "\n" for i, t in enumerate(TEXTS)))
    return path


ENV: dict = {}  # the environment of the engine and of its clients (pytest's own variables change per test)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """An engine serving its own MEMBENCH_HOME, stopped at the end."""
    home = tmp_path_factory.mktemp("engine-home")
    ENV.clear()
    ENV.update({k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "MEMBENCH_ENGINE"})
    ENV["MEMBENCH_HOME"] = str(home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMBENCH_HOME", str(home))
        started = engine.start(idle_minutes=30, env=ENV)
        assert started["started"]
        try:
            yield home
        finally:
            engine.stop()
    assert not (home / "engine" / "engine.sock").exists()


def _membench(args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "benchmark", *args], env=env or ENV,
                          capture_output=True, text=True, timeout=600, **kwargs)


def _served() -> int:
    return engine.ping()["served"]


def _records(folder) -> dict:
    """Per scorer: metrics, counts and the per-sample scores file's hash (what must not move)."""
    out = {}
    for path in sorted(folder.rglob("*.json")):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and "scorer" in record:
            out[record["scorer"]["name"]] = (record["metrics"], record["counts"], record["per_sample"]["sha256"])
    return out


def test_a_run_through_the_engine_matches_a_fresh_process(running, model_dir, data_file, tmp_path):
    args = ["run", "--target", str(model_dir), "--file", str(data_file), "--allow-invalid", "--json"]
    fresh = _membench([*args, "--results-dir", str(tmp_path / "fresh")], env={**ENV, "MEMBENCH_ENGINE": "off"})
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    shutil.rmtree(running / "features")  # cold again: the engine's child computes the features itself
    before = _served()
    warm = _membench([*args, "--results-dir", str(tmp_path / "engine")])
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert _served() == before + 1
    assert any((running / "features").rglob("*")), "the child computed and cached the features"
    a, b = _records(tmp_path / "fresh"), _records(tmp_path / "engine")
    assert a and a == b
    # the printed records too, but for the run's own timings and paths
    strip = (lambda recs: [{k: v for k, v in r.items() if k in ("scorer", "metrics", "counts", "split")} for r in recs])
    assert strip(json.loads(fresh.stdout)) == strip(json.loads(warm.stdout))


def test_exit_status_and_error_line_are_those_of_a_fresh_process(running, model_dir):
    before = _served()
    through = _membench(["run", "--target", str(model_dir), "--split", "no/such-split"])
    alone = _membench(["run", "--target", str(model_dir), "--split", "no/such-split"],
                      env={**ENV, "MEMBENCH_ENGINE": "off"})
    assert _served() == before + 1
    assert through.returncode == alone.returncode == 2
    assert through.stderr == alone.stderr and "no/such-split" in through.stderr
    assert through.stdout == alone.stdout


def test_what_it_cannot_run_as_a_fresh_process_runs_on_its_own(running, model_dir):
    before = _served()
    other = _membench(["-v", "run", "--target", str(model_dir), "--split", "no/such-split"],
                      env={**ENV, "SOME_LIBRARY_SETTING": "1"})
    assert other.returncode == 2
    assert "not using the engine" in other.stderr and "SOME_LIBRARY_SETTING" in other.stderr
    for argv in (["--help"], ["engine", "status"], ["results", "--help"]):  # only `run` is handed over
        assert _membench(argv).returncode == 0
    assert _served() == before
    status = _membench(["engine", "status", "--json"])
    assert json.loads(status.stdout)["usable_here"] is True
    status = _membench(["engine", "status", "--json"], env={**ENV, "SOME_LIBRARY_SETTING": "1"})
    assert "SOME_LIBRARY_SETTING" in json.loads(status.stdout)["why_not"]


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to act as another user")
def test_another_user_is_not_served(running):
    folder = running / "engine"
    probe = textwrap.dedent("""
        import json, os, socket
        from benchmark.engine import protocol
        path = str(protocol.socket_path())  # (found as root; then act as nobody)
        os.setgid(65534); os.setuid(65534)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except PermissionError as exc:
            print("refused:", exc)
        else:
            protocol._send(sock, {"op": "ping"})
            print(sock.recv(65536).decode())
    """)
    env = {**ENV, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("refused:"), out.stdout + out.stderr  # the 0700 folder keeps it out
    # Even with the way open (a hard link to the socket in a folder anyone may enter, and the
    # socket writable by all), the server asks the kernel who is calling.
    import tempfile

    opened = tempfile.mkdtemp(prefix="membench-engine-open-")
    link = os.path.join(opened, "engine.sock")
    os.link(folder / "engine.sock", link)
    os.chmod(opened, 0o755)
    os.chmod(link, 0o777)
    try:
        probe = probe.replace("path = str(protocol.socket_path())", f"path = {link!r}")
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        assert out.stdout.strip(), out.stderr
        answer = json.loads(out.stdout)
        assert "serves only its own user" in answer["refused"] and "pid" not in answer, out.stdout + out.stderr
    finally:
        os.chmod(folder / "engine.sock", 0o600)
        shutil.rmtree(opened)


@pytest.mark.parametrize("how", ["interrupt", "kill"])
def test_a_stopped_client_stops_its_child(running, model_dir, data_file, tmp_path, how):
    """A run blocked reading its pool (a FIFO nobody writes): Ctrl-C on the client reaches the
    child (exit 130, "interrupted"); a SIGKILLed client takes the child with it."""
    fifo = tmp_path / "pool.jsonl"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "-v", "run", "--target", str(model_dir), "--file",
                             str(data_file), "--allow-invalid", "--scorer", "dc_pdd:frequency=pool", "--pool", str(fifo),
                             "--results-dir", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    for _ in range(600):
        if engine.ping()["running"] == 1:
            break
        time.sleep(0.05)
    assert engine.ping()["running"] == 1
    time.sleep(1.0)  # well into the run: blocked on the FIFO, or on its way there
    if how == "interrupt":
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "interrupted" in err, err[-3000:]
    else:
        proc.kill()
        proc.wait(timeout=60)
    for _ in range(200):
        if engine.ping()["running"] == 0:
            break
        time.sleep(0.05)
    assert engine.ping()["running"] == 0
    assert not list(tmp_path.glob("out/**/*.json"))  # nothing was published


EXITING = textwrap.dedent("""
    import atexit, sys, threading, time
    from benchmark.exiting import exit_now
    out = sys.argv[1]
    atexit.register(lambda: open(out + ".atexit", "w").write("ran"))
    def late():
        time.sleep(0.3)
        open(out + ".thread", "w").write("done")
    threading.Thread(target=late).start()
    sys.stdout.write("x" * 300000)  # buffered, not yet flushed
    exit_now(7)
""")


def test_exit_now_keeps_what_an_ordinary_exit_does(tmp_path):
    stem = str(tmp_path / "probe")
    proc = subprocess.run([sys.executable, "-c", EXITING, stem], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7
    assert len(proc.stdout) == 300000  # the streams were flushed
    assert open(stem + ".thread").read() == "done"  # non-daemon threads were joined first
    assert open(stem + ".atexit").read() == "ran"  # then the atexit handlers ran


def test_the_program_keeps_its_exit_codes(tmp_path):
    assert _membench(["--version"]).returncode == 0
    bad = _membench(["run", "--no-such-option"])
    assert bad.returncode == 2 and "required: --target" in bad.stderr
    assert _membench(["results", "validate", str(tmp_path / "missing")]).returncode != 0


def test_per_sample_statistics_in_place_equal_the_formula_bit_for_bit():
    import torch

    from benchmark.features.engine import _chunk_stats

    torch.manual_seed(1)
    for n, vocab in ((1, 7), (37, 97), (256, 2048)):
        logits = torch.randn(n, vocab) * 4
        target = torch.randint(0, vocab, (n,))
        keep = logits.clone()
        lp, mu, sigma = _chunk_stats(logits, target)
        assert torch.equal(logits, keep)  # the logits are not touched
        logp = torch.log_softmax(keep.float(), dim=-1)
        p = logp.exp()
        ref_mu = (p * logp).sum(-1)
        assert torch.equal(lp, logp.gather(-1, target.unsqueeze(-1)).squeeze(-1))
        assert torch.equal(mu, ref_mu)
        assert torch.equal(sigma, (p * (logp - ref_mu.unsqueeze(-1)).square()).sum(-1).sqrt())
        d = torch.log_softmax(keep.double(), dim=-1)  # and both are the statistic itself
        assert torch.allclose(sigma.double(), (d.exp() * (d - (d.exp() * d).sum(-1, keepdim=True)) ** 2).sum(-1).sqrt(),
                              atol=1e-5)


def test_a_library_changed_on_disk_is_seen(tmp_path):
    """The server compares every package it imported with its file on disk before each run."""
    path = tmp_path / "lib.py"
    path.write_text("x = 1\n")
    st = path.stat()
    files = {"lib": [str(path), st.st_size, st.st_mtime_ns], "gone": [str(tmp_path / "gone.py"), 1, 1]}
    assert protocol._changed(files) == ["gone"]
    path.write_text("x = 2\n")  # same size, new content and modification time
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert protocol._changed(files) == ["lib", "gone"]
    assert "torch" in protocol._module_files(own=False) or "torch" not in sys.modules
    assert "benchmark.engine" in protocol._module_files(own=True) and "benchmark" not in protocol._module_files(own=False)


def test_a_gpu_run_is_not_taken():
    assert protocol.device_of(["run", "--target", "t", "--device", "cuda:1"]) == "cuda:1"
    assert protocol.device_of(["run", "--device=cuda"]) == "cuda"
    assert protocol.device_of(["run", "--target", "t"]) == "cpu"
    request = {"entry": "cli", "argv": ["run", "--device", "cuda"], "path": [], "cwd": "/", "env": dict(os.environ),
               "fingerprint": protocol.fingerprint()}
    assert "CPU runs only" in server._refusal(request, [0, 1, 2], protocol.fingerprint())
    request["argv"] = ["run", "--device", "cpu"]
    assert server._refusal(request, [0, 1, 2], protocol.fingerprint()) is None


def test_another_checkout_is_imported_anew(running, model_dir, data_file, tmp_path):
    """The server has membench's modules loaded; a client whose `benchmark` package is another
    checkout (or one whose files changed since: ``_changed``) gets a child that drops them and
    imports what the client would: here a copy whose runner leaves a mark when imported."""
    import benchmark

    checkout = tmp_path / "checkout"
    shutil.copytree(os.path.dirname(benchmark.__file__), checkout / "benchmark",
                    ignore=shutil.ignore_patterns("__pycache__"))
    mark = tmp_path / "imported"
    with open(checkout / "benchmark" / "runner.py", "a") as fh:
        fh.write(f"\nopen({str(mark)!r}, 'w').write('anew')\n")
    before = _served()
    out = subprocess.run([sys.executable, "-m", "benchmark", "run", "--target", str(model_dir), "--file",
                          str(data_file), "--allow-invalid", "--scorer", "loss", "--results-dir", str(tmp_path / "out")],
                         env=ENV, cwd=checkout, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert _served() == before + 1 and mark.read_text() == "anew"


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to act as another user")
def test_a_socket_served_by_another_user_gets_nothing(tmp_path):
    """A shared MEMBENCH_HOME where another user put a socket of theirs at the engine's path: a
    run must not send it its environment (tokens) and terminal. The client asks the kernel who
    serves the socket before it sends a byte, and runs the command itself."""
    import tempfile

    shared = tempfile.mkdtemp(prefix="membench-shared-")
    os.chmod(shared, 0o777)
    sock_path = os.path.join(shared, "engine.sock")
    got = os.path.join(shared, "got")
    fake = textwrap.dedent(f"""
        import os, socket, time
        os.setgid(65534); os.setuid(65534)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind({sock_path!r}); os.chmod({sock_path!r}, 0o777); s.listen(1)
        open({got!r} + ".ready", "w").close()
        conn, _ = s.accept()
        conn.settimeout(5)
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        open({got!r}, "wb").write(data)
    """)
    server_proc = subprocess.Popen([sys.executable, "-c", fake])
    try:
        for _ in range(200):
            if os.path.exists(got + ".ready"):
                break
            time.sleep(0.05)
        with pytest.raises(engine.EngineError, match="another user"):
            protocol._connect(path=Path(sock_path))
        server_proc.wait(timeout=30)
        assert open(got, "rb").read() == b""  # connected, refused, and sent nothing
    finally:
        server_proc.kill()
        shutil.rmtree(shared, ignore_errors=True)
