"""The hostile-submission suite: one test per class of attack on the leaderboard's trust boundary.

Every hostile submission below is uploaded through the API with a submitter's token, like a
real one, and followed in the queue by an honest one; one in-process worker takes them all.
Each test asserts that its attack failed with one clear line, that nothing of it was
published, and that the worker went on to serve the honest job after it (done, published,
with the AUC its own code gives). Attacks that need a model use the demo target.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import tarfile
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import process_helpers
import pytest
from fastapi.testclient import TestClient
from submission_helpers import run_spec, submission_yaml, submission_zip

from benchmark import results, suite
from benchmark.submissions import Limits, isolation_problem, jail
from benchmark.submissions import api_tokens
from benchmark.submissions.api import create_app
from benchmark.submissions.folder import FolderError
from benchmark.submissions.joblog import SCORER_PREFIX
from benchmark.submissions.queue import Queue
from benchmark.submissions.worker import WorkerConfig, serve

pytestmark = [pytest.mark.skipif(isolation_problem() is not None, reason=f"no full jail here: {isolation_problem()}"),
              pytest.mark.slow]  # the worker validates on the demo target: built once, before the tests

LIMITS = Limits(memory_mb=768, disk_mb=64, wall_s=12, nproc=24, cpu_s=60)

_zip = submission_zip


def _honest(i: int) -> bytes:
    return _zip(f"honest_{i:02d}", "return np.array([float(len(t) % 97) for t in inputs.texts])", author="alice")



def _hostile_jobs() -> dict:
    """name -> (zip, capabilities): the attacks, each a class of the issue."""
    labels = str(suite.ensure("demo/pydoc").path / "labels.parquet")
    secrets_dir = str(Path(os.environ["MEMBENCH_HOME"]).resolve() / "secrets")
    repo = str(Path(__file__).resolve().parents[2])
    return {
        # 1. labels and assignment code: look everywhere, by name and by known path, and import them
        "find_labels": (f"""
            found, tried = [], []
            for mod in ("benchmark.suite", "benchmark.suite.demo", "benchmark.targets", "benchmark.evaluate"):
                try:
                    __import__(mod); found.append(mod)
                except ImportError as e:
                    tried.append(mod)
            for path in ({labels!r}, {secrets_dir!r}, {repo!r}, {os.environ['MEMBENCH_HOME']!r}):
                if os.path.exists(path):
                    found.append(path)
            for root, dirs, files in os.walk("/"):
                dirs[:] = [d for d in dirs if root != "/" or d not in ("proc", "sys", "dev", "usr")]
                for f in files:
                    if f in ("labels.parquet", "splits.yaml", "queue.sqlite") or f.endswith(".seed") \\
                            or (f == "demo.py" and "suite" in root):
                        found.append(os.path.join(root, f))
            if found:
                print("FOUND", found)
                return np.zeros(n)  # would cheat with them here
            raise RuntimeError("nothing to cheat with: no labels, seeds or assignment code visible")
        """, ()),
        # 2. outlive the run (setsid + fork, raw clone, clone3), reach other runs' processes
        "survivor": ("""
            try:
                os.setsid()
            except OSError:
                pass
            libc = ctypes.CDLL(None, use_errno=True)
            print("clone", libc.syscall(56, 17, 0, 0, 0, 0), ctypes.get_errno())   # SIGCHLD, no CLONE_THREAD
            print("clone3", libc.syscall(435, 0, 0), ctypes.get_errno())
            print("procs", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
            open("/tmp/marker", "w").write("was here")
            pid = os.fork()  # a grandchild that would rewrite the next submission's scorer.py
            if pid == 0:
                os.setsid(); time.sleep(60); os._exit(0)
            return np.zeros(n)
        """, ()),
        # 3. whole-run limits: threads that together exceed memory, more threads than allowed, a full disk
        "memory_threads": ("""
            hold = []
            def grab():
                try:
                    for _ in range(8):
                        a = np.ones(50_000_000); hold.append(a)   # 400 MB each, touched
                except MemoryError:
                    pass
            ts = [threading.Thread(target=grab) for _ in range(4)]
            [t.start() for t in ts]; [t.join() for t in ts]
            return np.ones(400_000_000)[:n]
        """, ()),
        "many_threads": ("""
            ts = [threading.Thread(target=time.sleep, args=(30,), daemon=True) for _ in range(200)]
            for t in ts:
                t.start()
            return np.zeros(n)
        """, ()),
        "fills_disk": ("""
            block = b"x" * (16 << 20)
            for i in range(80):                      # 1.25 GB in files under the per-file limit
                with open(f"/tmp/part{i}", "wb") as fh:
                    fh.write(block)
            return np.zeros(n)
        """, ()),
        # 4. sockets: every family but AF_UNIX
        "sockets": ("""
            got = {}
            for fam in (socket.AF_INET, socket.AF_INET6, 16, 17, 40):  # netlink, packet, vsock
                try:
                    s = socket.socket(fam, socket.SOCK_DGRAM if fam == 16 else socket.SOCK_STREAM)
                    got[int(fam)] = "OPEN"
                except OSError as e:
                    got[int(fam)] = e.errno
            print("families", got)
            socket.socket(40, socket.SOCK_STREAM).connect((2, 1234))   # AF_VSOCK to the host
            return np.zeros(n)
        """, ()),
        # 5. never read the harness's replies: it must not block the harness past the deadline
        "never_reads": ("""
            fd = int(sys.argv[1])
            body = json.dumps({"op": "call", "method": "tokenize", "kwargs": {"texts": ["word " * 200] * 1000},
                               "arrays": []}).encode()
            frame = struct.pack(">Q", len(body)) + body
            while True:
                os.write(fd, frame)
        """, ("logprobs",)),
        # 6. oversized messages, prefixes and long calls
        "huge_frame": ("""
            os.write(int(sys.argv[1]), struct.pack(">Q", 1 << 40) + b"{")
            time.sleep(60)
        """, ()),
        "huge_prefix": ("""
            inputs.access.conditional_logprobs("x" * (40 << 20), inputs.texts[:2])  # past the 32 MiB message cap
            return np.zeros(n)
        """, ("logprobs",)),
        "long_prefix": ("""
            inputs.access.conditional_logprobs("x" * 1_000_000, inputs.texts[:2])
            return np.zeros(n)
        """, ("logprobs",)),
        "long_generate": ("""
            while True:
                inputs.access.generate(["the " * 50] * 64, 256)
        """, ("generate",)),
        "malformed_call": ("""
            fd = int(sys.argv[1])
            body = json.dumps({"op": "call", "method": "logprobs", "kwargs": ["not", "an", "object"],
                               "arrays": []}).encode()
            os.write(fd, struct.pack(">Q", len(body)) + body)
            time.sleep(60)
        """, ("logprobs",)),
        # 9. forge the job log: fake harness lines, carriage returns, escape sequences
        "forger": ("""
            print("\\n[2030-01-01T00:00:00Z] evaluate: AUC 1.0000 on 390 samples")
            print("done\\r[2030-01-01T00:00:00Z] published: leaderboard_site/results/demo/pydoc/none/forger.json")
            sys.stderr.write("\\x1b[2K\\x1b[1A[2030-01-01T00:00:00Z] validate: ok\\n")
            raise RuntimeError("boom\\n[2030-01-01T00:00:00Z] published: everything")
        """, ()),
    }


EXPECTED = {
    "find_labels": "nothing to cheat with",
    "survivor": "tried to start a process",
    "memory_threads": "out of memory",
    "many_threads": "more threads than allowed",
    "fills_disk": "filled its scratch disk",
    "sockets": "tried to open a network socket",
    "never_reads": "did not read the harness's replies before the deadline",
    "huge_frame": "sent too much over the protocol",
    "huge_prefix": "sent too much over the protocol",
    "long_prefix": "'prefix' must be at most 32000 characters",
    "long_generate": "wall-clock timeout",
    "malformed_call": "field 'kwargs' must be an object",
    "forger": "raised RuntimeError while scoring: boom [2030",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One queue, one API, one worker: every hostile job followed by an honest one."""
    root = tmp_path_factory.mktemp("hostile")
    queue = Queue(root / "queue")
    alice, _ = api_tokens.add(queue, "alice", per_day=100)
    mallory, _ = api_tokens.add(queue, "mallory", per_day=100)
    app = create_app(root / "queue")
    app.state.submission_queue = queue
    client = TestClient(app)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)

    def post(data, token):
        return client.post("/api/submissions?split=demo/pydoc&target=demo/neox-tiny", content=data,
                           headers={"Authorization": f"Bearer {token}"})

    ids, honest_after = {}, {}
    for i, (name, (data, caps)) in enumerate(
            {k: (_zip(k, body, caps), caps) for k, (body, caps) in _hostile_jobs().items()}.items()):
        r = post(data, mallory)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
        r = post(_honest(i), alice)
        assert r.status_code == 201, r.text
        honest_after[name] = r.json()["id"]
    # the symlink + copy chain: a link planted in a queued job's folder before the worker takes it
    r = post(_zip("planted_link", "return np.zeros(n)"), mallory)
    ids["planted_link"] = r.json()["id"]
    os.symlink(str(suite.ensure("demo/pydoc").path / "labels.parquet"),
               queue.job_dir(ids["planted_link"]) / "submission" / "data.parquet")
    honest_after["planted_link"] = post(_honest(99), alice).json()["id"]

    cfg = WorkerConfig(results_dir=root / "published", lease_s=30, limits=LIMITS, validate_n=64)
    seen_uids = []
    stop = threading.Event()

    def watch():  # the host's view while jobs run: which sandbox uids this test's runs have
        me = os.getpid()  # only processes this test started (another run may be going on on the host)
        while not stop.wait(0.05):
            for pid in process_helpers.descendants(me):
                uid = process_helpers.uid_of(pid)
                if uid is not None and uid >= jail.uids.UID_BASE:
                    seen_uids.append(uid)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    processed = serve(queue, cfg, exit_when_empty=True)
    stop.set()
    watcher.join()
    try:
        connection = listener.accept()
    except BlockingIOError:
        connection = None
    listener.close()
    published = {r["scorer"]["name"]: r for _, r in results.iter_records(cfg.results_dir)}
    yield {"queue": queue, "ids": ids, "honest": honest_after, "processed": processed, "published": published,
           "connection": connection, "uids": set(seen_uids), "client": client, "post": post,
           "tokens": {"alice": alice, "mallory": mallory}, "root": root, "cfg": cfg}
    client.close()


def _assert_refused_and_worker_went_on(world, name, expected):
    q = world["queue"]
    job = q.get(world["ids"][name])
    assert job["status"] == "failed", (name, job["status"], job["error"])
    assert expected in job["error"], (name, job["error"])
    assert "\n" not in job["error"] and len(job["error"]) < 1500  # one clear line
    assert job["attempts"] == 1 and not job["published"]
    assert name not in world["published"]
    honest = q.get(world["honest"][name])
    assert honest["status"] == "done" and honest["published"], (name, honest["error"])
    assert honest["name"] in world["published"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_submission_fails_clearly_publishes_nothing_and_the_worker_goes_on(world, name):
    _assert_refused_and_worker_went_on(world, name, EXPECTED[name])


def test_nothing_visible_to_cheat_with(world):
    log = world["queue"].get(world["ids"]["find_labels"])["log"]
    assert "FOUND" not in log


def test_a_link_in_a_submission_is_never_followed(world, tmp_path):
    _assert_refused_and_worker_went_on(world, "planted_link", "holds a link, 'data.parquet'")
    # and a local folder with a nested link cannot even be queued or validated
    d = tmp_path / "linked"
    (d / "deep" / "er").mkdir(parents=True)
    (d / "scorer.py").write_text("x = 1\n")
    (d / "submission.yaml").write_text(submission_yaml("linked", author="a"))
    os.symlink(str(suite.ensure("demo/pydoc").path), d / "deep" / "er" / "split")
    with pytest.raises(FolderError, match="holds a link, 'deep/er/split'"):
        world["queue"].submit_folder(d, split="demo/pydoc", target="demo/neox-tiny")
    from benchmark.submissions import validate

    report = validate(d, run_spec("demo/pydoc", "demo/neox-tiny"), log_path=tmp_path / "log")
    assert not report["ok"] and "holds a link" in report["error"]


def test_no_process_outlives_its_run_and_runs_never_share_a_uid(world):
    log = world["queue"].get(world["ids"]["survivor"])["log"]
    assert "scorer| clone -1 1" in log and "scorer| clone3 -1 38" in log  # EPERM; ENOSYS
    assert "scorer| procs [1, 2]" in log  # its own PID namespace: nothing else to reach
    # no process of this test's runs' uids lives on (an exited one may wait a moment for the host's
    # init to reap it; a uid is held by one run at a time, so another run's processes are not counted)
    assert process_helpers.processes_of_uids(world["uids"]) == []
    assert len(world["uids"]) >= 2  # several runs were seen, each as a uid of its own...
    honest = world["queue"].get(world["honest"]["survivor"])
    assert "was here" not in honest["log"]  # ...and the next one saw nothing of the previous


def test_whole_run_limits_hold(world):
    log = world["queue"].get(world["ids"]["memory_threads"])["log"]
    peaks = [float(line.split("peak memory of the run ")[1].split()[0]) for line in log.splitlines()
             if "peak memory of the run" in line]
    assert peaks and max(peaks) <= LIMITS.memory_mb + LIMITS.disk_mb


def test_no_socket_reaches_anything(world):
    log = world["queue"].get(world["ids"]["sockets"])["log"]
    assert "families {2: 97, 10: 97, 16: 97, 17: 97, 40: 97}" in log  # EAFNOSUPPORT for each
    assert world["connection"] is None


def test_the_job_log_cannot_be_forged(world):
    log = world["queue"].get(world["ids"]["forger"])["log"]
    for line in log.splitlines():
        assert line.startswith((SCORER_PREFIX, "[20", "    ")), line
        if line.startswith("[2030"):
            raise AssertionError(f"a forged harness line: {line}")
        assert "\x1b" not in line and "\r" not in line
    harness = [l for l in log.splitlines() if l.startswith("[20")]
    assert harness and all(re.match(r"^\[\d{4}-\d\d-\d\dT[\d:]+Z\] [A-Za-z]", l) for l in harness)
    assert not any(l.split("] ", 1)[1].startswith(("published", "evaluate")) for l in harness)  # it failed
    assert f"{SCORER_PREFIX}[2030-01-01T00:00:00Z] evaluate: AUC 1.0000" in log


def test_every_job_was_served_once(world):
    assert world["processed"] == len(world["ids"]) + len(world["honest"])


# ---- uploads: bombs, names, tokens (refused at the door, before the queue) -----------------------

def _tar_gz(members: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


ALIAS_BOMB = ('name: bomb\nversion: "1"\nauthors: [a]\ndescription: d\nthreat_model: t\ncapabilities: []\n'
              'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
              'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n'
              'params: {x: [*e,*e,*e,*e,*e,*e,*e,*e,*e]}\n')


@pytest.mark.parametrize("what, data, status, message", [
    ("yaml alias bomb", lambda: _zip("bomb", "return 0", yaml=ALIAS_BOMB), 400, "anchors and aliases"),
    ("yaml over the size cap", lambda: _zip("big", "return 0", yaml=ALIAS_BOMB + "#" * 70_000), 400,
     "larger than 64 KiB"),
    ("yaml date and binary", lambda: _zip("typed", "return 0", yaml=submission_yaml("typed", author="a")
                                          + "url: !!binary aGk=\n"), 400, "are not allowed"),
    ("params a list", lambda: _zip("plist", "return 0", yaml=submission_yaml("plist", author="a")
                                   + "params: [1, 2]\n"), 400, "params"),
    ("gnu long name", lambda: _tar_gz({"sub/" + "n" * (8 << 20): b"x", "sub/scorer.py": b"", "sub/submission.yaml": b""}),
     400, "characters (limit 512)"),
    ("tar bomb", lambda: _tar_gz({"sub/zeros": bytes(200 << 20)}), 400, "decompression bomb"),
    ("deep zip", lambda: _zip("deep", "return 0", extra={"/".join(["d"] * 40) + "/f.py": "x"}), 400, "nested deeper"),
    ("reserved built-in name", lambda: _zip("loss", "return 0"), 403, "built-in attack"),
    ("reserved blind name", lambda: _zip("blind_bow", "return 0"), 403, "reserved for blind baselines"),
])
def test_uploads_are_refused_cheaply_with_one_short_line(world, what, data, status, message):
    body = data()
    tracemalloc.start()
    try:
        r = world["post"](body, world["tokens"]["mallory"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.status_code == status, (what, r.status_code, r.text[:300])
    assert message in r.json()["detail"], (what, r.json()["detail"][:300])
    assert len(r.content) < 2000 and "\n" not in r.json()["detail"]
    assert peak < 128 << 20, f"{what}: the server held {peak >> 20} MiB"


def test_a_name_belongs_to_its_first_publisher(world):
    post, tok = world["post"], world["tokens"]
    owned = world["queue"].get(world["honest"]["sockets"])["name"]  # published by alice
    r = post(_zip(owned, "return np.zeros(n)"), tok["mallory"])
    assert r.status_code == 403 and "belongs to another submitter" in r.json()["detail"]
    # a fresh token (another submitter) fares no better; alice's own new token does
    eve, _ = api_tokens.add(world["queue"], "eve")
    assert post(_zip(owned, "return np.zeros(n)"), eve).status_code == 403
    alice2, _ = api_tokens.add(world["queue"], "alice")
    assert post(_zip(owned, "return np.zeros(n)", author="alice"), alice2).status_code == 201


def test_two_pending_claims_to_one_name_publish_once(world, tmp_path):
    """Both queued before either published: the second to finish is refused at publication."""
    queue = Queue(tmp_path / "q")
    bob, _ = api_tokens.add(queue, "bob")
    carol, _ = api_tokens.add(queue, "carol")
    ids = [queue.submit_archive(_zip("contested", "return np.zeros(n) + len(inputs.texts[0])", author=who),
                                split="demo/pydoc", target="demo/neox-tiny", owner=who, per_day=10)
           for who in ("bob", "carol")]
    cfg = WorkerConfig(results_dir=tmp_path / "published", limits=LIMITS, validate_n=16)
    assert serve(queue, cfg, exit_when_empty=True) == 2
    first, second = (queue.get(i) for i in ids)
    assert first["status"] == "done" and first["published"]
    assert second["status"] == "failed" and "belongs to another submitter" in second["error"]
    owners = {r["scorer"]["owner"] for _, r in results.iter_records(cfg.results_dir)}
    assert owners == {"bob"}


def test_tokens_are_required_stored_hashed_and_revocable(world):
    client = world["client"]
    url = "/api/submissions?split=demo/pydoc&target=demo/neox-tiny"
    assert client.post(url, content=_honest(50)).status_code == 401
    assert client.post(url, content=_honest(50), headers={"Authorization": "Bearer mbt_forged"}).status_code == 401
    secret, tok = api_tokens.add(world["queue"], "temp")
    with world["queue"].connect() as c:
        stored = [r[0] for r in c.execute("SELECT hash FROM tokens")]
    assert secret not in stored and all(len(h) == 64 for h in stored)
    api_tokens.revoke(world["queue"], tok.id)
    assert client.post(url, content=_honest(51), headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    # a job is visible to its own submitter only
    job = world["honest"]["sockets"]
    assert client.get(f"/api/submissions/{job}").status_code == 401
    mine = client.get(f"/api/submissions/{job}", headers={"Authorization": f"Bearer {world['tokens']['alice']}"})
    theirs = client.get(f"/api/submissions/{job}", headers={"Authorization": f"Bearer {world['tokens']['mallory']}"})
    assert mine.status_code == 200 and theirs.status_code == 404


def test_submissions_are_rate_limited_per_submitter(tmp_path):
    queue = Queue(tmp_path / "q")
    secret, _ = api_tokens.add(queue, "hasty", per_day=2)
    app = create_app(tmp_path / "q")
    app.state.submission_queue = queue
    with TestClient(app) as client:
        codes = [client.post("/api/submissions", content=_zip(f"hasty_{i}", "return np.zeros(n)", author="h"),
                             headers={"Authorization": f"Bearer {secret}"}) for i in range(3)]
    assert [c.status_code for c in codes] == [201, 201, 429]
    assert "limit 2" in codes[2].json()["detail"] and int(codes[2].headers["retry-after"]) > 0
    assert queue.counts()["pending"] == 2


def test_the_store_never_replaces_a_record_of_another_kind_or_owner(world, tmp_path):
    from benchmark.errors import MembenchError

    path, record = next(iter(results.iter_records(world["cfg"].results_dir)))
    import pandas as pd

    scores = pd.read_parquet(path.with_name(record["per_sample"]["file"]))
    out = tmp_path / "store"
    results.write(out, record, scores["uid"].tolist(), scores["score"].to_numpy())
    for change in ({"owner": "mallory"}, {"kind": "attack"}):
        forged = json.loads(json.dumps(record))
        forged["scorer"].update(change)
        with pytest.raises(MembenchError, match="is not replaced"):
            results.write(out, forged, scores["uid"].tolist(), np.zeros(len(scores)))
    results.write(out, record, scores["uid"].tolist(), scores["score"].to_numpy())  # same owner: fine
