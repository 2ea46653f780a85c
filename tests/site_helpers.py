"""Helpers for the site, API and browser tests: small results folders made with the real store."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from benchmark import metrics
from benchmark.results import write
from benchmark.results.gate import publish
from synthetic_results import synthetic_record

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO / "leaderboard_site" / "results"
XSS = '<script>alert("xss")</script>'
PYTHIA_1_4B_COUNTED = 1_414_647_808  # what a loaded Pythia-1.4b counts (its nominal size is "1.4b")
MODEL_FREE = "text_only_ratio"


def make_results(root: Path, *, published: bool = False, xss: bool = True) -> Path:
    """Two splits and a control, three attacks on two Pythia sizes and two checkpoints, blind
    baselines, a diagnostics file, a model-free submission (no capability) and (with ``xss``)
    a submitted scorer whose name and description hold a script tag, all through the publication
    gate. Records on pythia-1.4b carry a counted parameter number; those on pythia-160m do not
    (older records)."""
    root = Path(root)
    if published and PUBLISHED.is_dir():
        shutil.copytree(PUBLISHED, root, dirs_exist_ok=True)
    splits = [("mimir/wikipedia_en/ngram_13_0.8", "pretraining", "mimir"), ("wikimia/32", "pretraining", "wikimia"),
              ("control/wikimia_vs_wikimia24", "control", "control")]
    targets = [("pythia-160m", "main"), ("pythia-1.4b", "main"), ("pythia-160m", "step1000"), ("pythia-160m", "step99000")]
    for k, (split, track, family) in enumerate(splits):
        rec, uids, scores = synthetic_record(split, "none", "blind_bow", kind="blind_baseline", track=track,
                                             family=family, strength=0.2 + k, n=120, seed=k)
        write(root, rec, uids, scores)
        for j, (target, rev) in enumerate(targets):
            for i, scorer in enumerate(("loss", "zlib", "min_k")):
                rec, uids, scores = synthetic_record(split, target, scorer, revision=rev, track=track, family=family,
                                                     strength=0.3 + 0.4 * i + 0.2 * j, n=120, seed=i + 3 * j)
                if target == "pythia-1.4b":
                    rec["target"]["n_parameters"] = PYTHIA_1_4B_COUNTED
                write(root, rec, uids, scores)
    rec, uids, scores = synthetic_record("wikimia/32", "none", MODEL_FREE, track="pretraining", family="wikimia",
                                         kind="submission", strength=1.5, n=120, seed=11)
    rec["scorer"]["requires"] = []
    rec["submission"] = {"description": "zlib ratio of the text alone", "capabilities": []}
    write(root, rec, uids, scores)
    if xss:
        rec, uids, scores = synthetic_record(
            "wikimia/32", "pythia-160m", XSS, track="pretraining", family="wikimia", strength=1.0, n=120, seed=7,
            kind="submission",
            extra={"submission": {"authors": ["Mallory <img src=x onerror=alert(1)>"], "description": XSS,
                                  "threat_model": "gray-box: " + XSS}},
        )
        write(root, rec, uids, scores)
    diag = root / "_diagnostics" / "wikimia" / "32.json"
    diag.parent.mkdir(parents=True, exist_ok=True)
    diag.write_text(json.dumps({
        "blind_auc": 0.985, "blind_auc_ci95": [0.97, 0.995], "verdict": "shifted",
        "baselines": {"bag_of_words": {"auc": 0.985, "tpr_at_fpr": {"0.01": {"value": 0.6, "resolvable": True}}},
                      "date_detection": {"auc": 0.93}},
    }))
    report = publish(root)
    assert report.ok, [str(r) for r in report.rejected]
    return root


@pytest.fixture()
def local_home(tmp_path, monkeypatch):
    """A MEMBENCH_HOME of the test's own (import this fixture into a test module)."""
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def result_files(root: Path):
    return sorted(p for p in Path(root).rglob("*.json") if "_diagnostics" not in p.parts)


def materialize_local_split(split_id: str = "local/site-test", n: int = 160, seed: int = 0):
    """A split registered and materialized under the current MEMBENCH_HOME: texts of 5 to 200
    words, half members. Returns the loaded Split."""
    from benchmark import suite
    from benchmark.suite.store import materialize

    rng = np.random.default_rng(seed)
    spec = suite.register_split({
        "id": split_id, "family": "local", "track": "pretraining", "domain": "test",
        "source": {"kind": "written", "made_by": "tests/site_helpers.py"},
        "fields": {"text": "text", "label": "label"}, "valid_targets": ["*"], "label_meaning": "1 = member",
    }, replace=True)
    texts = [" ".join(f"w{rng.integers(1000)}" for _ in range(int(rng.integers(5, 200)))) + f" #{i}" for i in range(n)]
    return materialize(spec, texts[: n // 2], texts[n // 2:], source=dict(spec.source))


def record_on_split(split, scorer: str, *, target: str = "pythia-160m", strength: float = 1.0, seed: int = 0,
                    length_effect: float = 0.0):
    """(record, uids, scores) whose per-sample uids are the split's samples, with metrics from
    the real metrics stage on the split's labels. ``length_effect`` adds word count x effect to
    the members' scores, so the AUC differs between length buckets."""
    labels = split.labels()
    uids = list(split.samples["uid"])
    words = split.samples.set_index("uid")["text"].map(lambda t: len(t.split()))
    y = labels.loc[uids].to_numpy()
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=len(uids)) + strength * y + length_effect * y * words.loc[uids].to_numpy() / 100
    rec, _, _ = synthetic_record(split.id, target, scorer, family="local", n=len(uids))
    rec["split"]["content_hash"] = split.content_hash
    summary = metrics.summarize(y, scores, n_resamples=50, seed=0)
    summary["roc"] = metrics.roc_points(y, scores)
    rec["metrics"] = summary
    return rec, uids, scores


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app):
    """Serve ``app`` with uvicorn on a free localhost port for the duration; yields the base URL."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 30
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start within 30 s"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def modules_after(code: str, *, timeout: int = 300) -> list[str]:
    """Run ``code`` in a fresh Python and return the torch and attack modules it imported."""
    import subprocess
    import sys

    probe = (code + "\nimport sys; print([m for m in sys.modules if m.split('.')[0] == 'torch' "
             "or m.startswith('benchmark.attacks')])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))
