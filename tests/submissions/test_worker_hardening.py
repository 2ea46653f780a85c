"""The worker hardened like the jail (issue 23, item 4), one hostile test per class.

Each test asserts that the door is closed with one clear line, free of host paths, and that
the worker goes on: the honest job queued after the hostile one is done and published with the
AUC its own code gives. Jobs run in the real jail where this machine has one (else with the
rlimits only: the checks here are the worker's, not the jail's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from submission_helpers import submission_zip

from benchmark import home, results, targets
from benchmark.errors import MembenchError
from benchmark.submissions import Limits, guards, isolation_problem
from benchmark.submissions import api_tokens as tokens
from benchmark.submissions import worker as worker_mod
from benchmark.submissions.api import create_app
from benchmark.submissions.queue import Queue
from benchmark.submissions.worker import WorkerConfig, serve

REPO = Path(__file__).resolve().parents[2]
UNSANDBOXED = isolation_problem() is not None
LIMITS = Limits(memory_mb=768, disk_mb=64, wall_s=20, nproc=24, cpu_s=60)

HONEST = "return np.array([float(len(t) % 97) for t in inputs.texts])"


def _zip(name: str, body: str = HONEST, caps=(), refs=(), author="mallory") -> bytes:
    return submission_zip(name, body, caps, refs, author, threat_model="hardening test")


def _host_paths() -> list[str]:
    return [p for p in {str(REPO), os.environ["MEMBENCH_HOME"], os.path.realpath(os.environ["MEMBENCH_HOME"]),
                        sys.prefix, str(Path.home())} if p not in ("/", "")]


def _no_host_path(text: str) -> None:
    for p in _host_paths():
        assert p not in text, (p, text[-2000:])
    assert "Traceback" not in text, text[-2000:]


def _cfg(root: Path, site_out: Path | None = None, **kw) -> WorkerConfig:
    """A worker as the command line makes it: its publish hook gates the records and, with
    ``site_out``, builds the site."""
    from benchmark.commands.worker import publish_hook

    return WorkerConfig(results_dir=root / "published", on_publish=publish_hook(site_out), lease_s=30,
                        limits=LIMITS, allow_unsandboxed=UNSANDBOXED, validate_n=32, **kw)


class World:
    def __init__(self, root: Path):
        self.root = root
        self.queue = Queue(root / "queue")
        self.alice, _ = tokens.add(self.queue, "alice", per_day=100)
        self.mallory, _ = tokens.add(self.queue, "mallory", per_day=100)
        app = create_app(root / "queue")
        app.state.submission_queue = self.queue
        self.client = TestClient(app)

    def post(self, data: bytes, token: str, target="demo/neox-tiny"):
        return self.client.post(f"/api/submissions?split=demo/pydoc&target={target}", content=data,
                                headers={"Authorization": f"Bearer {token}"})

    def submit(self, data: bytes, token: str, target="demo/neox-tiny") -> str:
        r = self.post(data, token, target)
        assert r.status_code == 201, r.text
        return r.json()["id"]


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.client.close()


def _honest_done(world: World, job_id: str, cfg: WorkerConfig) -> None:
    job = world.queue.get(job_id)
    assert job["status"] == "done" and job["published"], (job["status"], job["error"])
    published = {r["scorer"]["name"]: r for _, r in results.iter_records(cfg.results_dir)}
    name = job["name"]
    assert name in published
    # the AUC its own code gives, recomputed here from the split
    from benchmark import metrics, suite

    split = suite.ensure("demo/pydoc")
    labels = split.labels()
    scores = np.array([float(len(t) % 97) for t in split.samples["text"]])
    want = metrics.auc(labels.reindex(split.samples["uid"]).to_numpy(), scores)
    assert abs(published[name]["metrics"]["auc"] - want) < 1e-9


# --- every exception of a job ends that job, the worker goes on ----------------------------------

@pytest.mark.parametrize("helper", [True, False], ids=["helper", "in-process"])
@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), MemoryError(), RecursionError("deep"),
                                 ValueError(f"bad thing at {REPO}/benchmark/x.py")],
                         ids=lambda e: type(e).__name__)
def test_any_exception_of_a_job_ends_it_with_one_line(world, monkeypatch, exc, helper):
    real = worker_mod.validate

    def validate(folder, *args, **kw):
        if "hostile" in Path(folder).joinpath("submission.yaml").read_text():
            raise exc
        return real(folder, *args, **kw)

    monkeypatch.setattr(worker_mod, "validate", validate)
    bad = world.submit(_zip("hostile_job"), world.mallory)
    good = world.submit(_zip("honest_one", author="alice"), world.alice)
    cfg = _cfg(world.root, helper=helper)
    assert serve(world.queue, cfg, exit_when_empty=True) == 2
    job = world.queue.get(bad)
    assert job["status"] == "failed" and "\n" not in job["error"]
    _no_host_path(job["error"] + job["log"])
    assert job["log"].count("FAILED") == 1
    _honest_done(world, good, cfg)


def test_a_helper_over_its_memory_budget_fails_alone():
    """The models live in a helper whose address space is limited: a job that allocates past it
    ends with one line; the caller (the worker) is untouched."""
    def hog():
        return np.ones(1 << 28).sum()  # 2 GiB

    with pytest.raises(guards.HelperFailed) as info:
        guards.in_helper(hog, memory_mb=256)
    assert "memory" in str(info.value).lower() and "\n" not in str(info.value)
    assert guards.in_helper(lambda: 6 * 7, memory_mb=256) == 42


# --- score ranges ---------------------------------------------------------------------------------

def test_extreme_scores_are_refused_and_bounded_extremes_publish(world):
    beyond = world.submit(_zip("beyond", "return np.where(np.arange(n) % 2 == 0, 1e300, -1e300)"), world.mallory)
    wide = world.submit(_zip("wide", "return np.where(np.arange(n) % 3 == 0, 1e29, "
                                     "np.where(np.arange(n) % 3 == 1, -1e29, 5e-324))"), world.mallory)
    good = world.submit(_zip("honest_two", author="alice"), world.alice)
    cfg = _cfg(world.root, site_out=world.root / "site")
    serve(world.queue, cfg, exit_when_empty=True)
    job = world.queue.get(beyond)
    assert job["status"] == "failed" and "beyond ±1e+30" in job["error"], job["error"]
    assert world.queue.get(wide)["status"] == "done" and world.queue.get(wide)["published"]
    _honest_done(world, good, cfg)
    assert (world.root / "site" / "index.html").is_file()


# --- the record is published only after its pages built ------------------------------------------

def _listing(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_record_whose_pages_do_not_build_is_not_published(world, monkeypatch):
    from benchmark import site

    site_out = world.root / "site"
    cfg = _cfg(world.root, site_out=site_out)
    first = world.submit(_zip("honest_first", author="alice"), world.alice)
    serve(world.queue, cfg, exit_when_empty=True)
    _honest_done(world, first, cfg)
    before_results, before_site = _listing(cfg.results_dir), _listing(site_out)

    real = site.build
    calls = []

    def broken(results_dir, out):
        calls.append(1)
        if len(calls) == 1:
            raise OverflowError(f"histogram of {REPO}: cannot convert float infinity")
        return real(results_dir, out)

    monkeypatch.setattr(site, "build", broken)
    bad = world.submit(_zip("pages_break"), world.mallory)
    serve(world.queue, cfg, exit_when_empty=True)
    job = world.queue.get(bad)
    assert not job["published"] and "not published" in job["error"], job
    _no_host_path(job["error"] + job["log"])
    assert _listing(cfg.results_dir) == before_results and _listing(site_out) == before_site
    good = world.submit(_zip("honest_after", author="alice"), world.alice)
    serve(world.queue, cfg, exit_when_empty=True)
    _honest_done(world, good, cfg)


# --- models by registry id only, built, within a budget --------------------------------------------

def _error_of(response) -> str:
    return response.json()["detail"]


def test_reference_models_and_targets_are_registry_ids_answered_alike(world, tmp_path):
    """A path, existing or not (the submitter's own upload included), gets the same refusal; the
    refusal never looks at the file system, and it costs the quota an upload costs."""
    own = world.submit(_zip("mine"), world.mallory)
    probes = ["/etc", "/nonexistent/xyz", str(world.queue.job_dir(own) / "submission"), "../../etc", "~root",
              str(REPO / ".venv"), "demo/../../etc"]
    answers = set()
    for probe in probes:
        r = world.post(_zip("probe", caps=["reference"], refs=[probe]), world.mallory)
        assert r.status_code == 400, r.text
        answers.add(_error_of(r))
        r = world.post(_zip("probe2"), world.mallory, target=probe)
        assert r.status_code == 422, r.text
        answers.add(_error_of(r))
    assert len(answers) == 2, answers  # one answer for a reference, one for a target: no oracle, no echo
    for text in answers:
        _no_host_path(text)


def test_refusals_are_rate_limited_like_uploads(world):
    token, _ = tokens.add(world.queue, "prober", per_day=3)
    codes = [world.post(_zip("p", caps=["reference"], refs=[f"/etc/{i}"]), token).status_code for i in range(3)]
    assert codes == [400, 400, 400]
    assert world.post(_zip("p", caps=["reference"], refs=["/etc"]), token).status_code == 429
    assert world.post(_zip("p"), token, target="/etc").status_code == 429
    assert world.post(_zip("honest_p"), token).status_code == 429


def test_an_unbuilt_target_is_refused_at_submission(world):
    """Building a target is the maintainers' command: the worker never trains or downloads one."""
    r = world.post(_zip("needs_pythia", caps=["logprobs"]), world.mallory, target="pythia-70m")
    if guards.built_folder(targets.get_target("pythia-70m")) is not None:
        pytest.skip("pythia-70m is built here")
    assert r.status_code == 400 and "not built" in _error_of(r) and "membench targets build pythia-70m" in _error_of(r)
    r = world.post(_zip("needs_ref", caps=["reference"], refs=["pythia-160m"]), world.mallory)
    assert r.status_code == 400 and "not built" in _error_of(r)
    # a text-only submission needs no model at all
    assert world.post(_zip("text_only"), world.mallory, target="pythia-70m").status_code == 201


def test_a_model_over_the_budget_is_refused_before_anything_is_allocated(world, monkeypatch, tmp_path):
    folder = tmp_path / "huge"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt_neox", "vocab_size": 50304,
                                                    "hidden_size": 8192, "num_hidden_layers": 64,
                                                    "intermediate_size": 32768}))
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    (folder / "tokenizer.json").write_text("{}")
    spec_id = f"test-huge-{os.getpid()}"
    targets.register_target({"id": spec_id, "path": str(folder)}, replace=True)
    try:
        assert guards.parameters_from_config(json.loads((folder / "config.json").read_text())) > 30e9
        loads = []
        monkeypatch.setattr(targets, "load_target", lambda *a, **k: loads.append(a))
        bad = world.submit(_zip("huge_ref", caps=["logprobs"]), world.mallory, target=spec_id)
        good = world.submit(_zip("honest_three", author="alice"), world.alice)
        cfg = _cfg(world.root, model_budget=guards.ModelBudget(memory_mb=2048))
        serve(world.queue, cfg, exit_when_empty=True)
        job = world.queue.get(bad)
        assert job["status"] == "failed" and "model budget" in job["error"] and not loads, job["error"]
        _no_host_path(job["error"] + job["log"])
        _honest_done(world, good, cfg)
    finally:
        from benchmark import registered

        registered.entry_file("targets", spec_id).unlink(missing_ok=True)


# --- host paths never reach a submitter -------------------------------------------------------------

@pytest.mark.slow
def test_a_lone_surrogate_sent_to_a_capability_gets_one_line_back(world):
    body = """
        try:
            inputs.access.logprobs(["fine", "\\ud800 broken"])
        except Exception as e:
            print("REFUSED", type(e).__name__, e)
        return np.array([float(len(t) % 97) for t in inputs.texts])
    """
    bad = world.submit(_zip("surrogate", body, caps=["logprobs"]), world.mallory)
    good = world.submit(_zip("honest_four", author="alice"), world.alice)
    cfg = _cfg(world.root)
    serve(world.queue, cfg, exit_when_empty=True)
    job = world.queue.get(bad)
    assert "REFUSED CapabilityRefused" in job["log"] and "not valid Unicode" in job["log"], job["log"][-3000:]
    _no_host_path(job["log"] + (job["error"] or ""))
    _honest_done(world, good, cfg)


def test_scrub_paths_names_host_folders_and_keeps_the_sandboxes():
    text = (f"File \"{REPO}/benchmark/x.py\", line 3; {home.home()}/secrets/a; {sys.prefix}/lib/python; "
            "/opt/membench/child.py; /submission/scorer.py; /srv/data/labels.parquet")
    out = guards.scrub_paths(text)
    _no_host_path(out)
    assert "/opt/membench/child.py" in out and "/submission/scorer.py" in out and "/srv/data" not in out


def test_job_error_is_one_line_for_every_base_exception():
    for exc in (SystemExit(1), KeyboardInterrupt(), MemoryError(), RecursionError(), GeneratorExit(),
                MembenchError(f"bad {REPO}\nsecond line", "a hint")):
        line = guards.job_error(exc)
        assert "\n" not in line and str(REPO) not in line and line


def test_the_helper_computes_after_the_callers_torch_threads_started():
    """A fork after any torch operation leaves OpenMP's pool behind: a parallel operation in the
    helper hung or died of SIGSEGV (a hostile scorer's batched generate). One subprocess, so a
    regression fails in a minute rather than at the test timeout."""
    code = """
import torch
from benchmark.submissions import guards

a = torch.randn(384, 384)
(a @ a).sum()  # the caller's thread pool starts


def work():
    total = 0.0
    for _ in range(20):
        total += float((torch.randn(384, 384) @ torch.randn(384, 384)).sum())
    return 1


print("helper returned", guards.in_helper(work, memory_mb=4096))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0 and "helper returned 1" in out.stdout, out.stderr[-2000:]
