"""Helpers for the site, API and browser tests: small results folders made with the real store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from benchmark.results import write
from benchmark.results.synthetic import synthetic_record

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO / "leaderboard_site" / "results"
XSS = '<script>alert("xss")</script>'


def make_results(root: Path, *, published: bool = False, xss: bool = True) -> Path:
    """Two splits and a control, three attacks on two Pythia sizes and two checkpoints, blind
    baselines, a diagnostics file, and (with ``xss``) a submitted scorer whose name and
    description hold a script tag."""
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
    return root


def result_files(root: Path):
    return sorted(p for p in Path(root).rglob("*.json") if "_diagnostics" not in p.parts)
