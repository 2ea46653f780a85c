"""Synthetic result files for site tests and the site-build benchmark. Never published.

Scores are drawn at random (members shifted by ``strength``), the metrics are computed by the
real metrics stage (with fewer bootstrap resamples, which the record states), and the files
are written through the real store, so they pass the schema like any `membench run` output.
Each record says ``provenance.synthetic: true``.
"""

from __future__ import annotations

import hashlib
import copy
import itertools
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmark import metrics
from benchmark.results.provenance import environment
from benchmark.results.store import write

SYNTHETIC_CREATED_AT = "2026-01-01T00:00:00+00:00"


def _hash(*parts) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


@lru_cache(maxsize=256)
def _scores_and_metrics(strength: float, n: int, seed: int, n_resamples: int):
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 0], [n // 2, n - n // 2])
    scores = rng.normal(size=n) + strength * labels
    summary = metrics.summarize(labels, scores, n_resamples=n_resamples, seed=0)
    summary["roc"] = metrics.roc_points(labels, scores)
    return summary, scores


def synthetic_record(
    split_id: str,
    target_id: str,
    scorer: str,
    *,
    track: str = "pretraining",
    family: str = "synthetic",
    revision: str | None = "main",
    kind: str = "attack",
    strength: float = 1.0,
    n: int = 200,
    seed: int = 0,
    n_resamples: int = 50,
    extra: dict | None = None,
):
    """(record, uids, scores) for one made-up (scorer, target, split).

    Scores and metrics depend only on (strength, n, seed, n_resamples) and are memoized, so
    thousands of files cost a few dozen metric computations.
    """
    summary, scores = _scores_and_metrics(strength, n, seed, n_resamples)
    uids = [_hash(split_id, i)[:16] for i in range(n)]
    record = {
        "split": {
            "id": split_id, "content_hash": _hash("split", split_id), "track": track, "family": family,
            "label_validity": {"valid": True, "allowed_invalid": False},
        },
        "target": (
            {"id": "none", "note": "blind baseline: no model access"}
            if kind == "blind_baseline"
            else {
                "id": target_id, "path": None, "revision": revision, "weights_sha256": _hash("w", target_id, revision),
                "tokenizer_sha256": _hash("t", target_id), "dtype": "float32", "context_rule": "truncate-head",
                "max_length": 2048,
            }
        ),
        "scorer": {
            "name": scorer, "version": "1", "params": {}, "requires": [] if kind == "blind_baseline" else ["features"],
            "code_sha256": _hash("code", scorer), "kind": kind,
        },
        "metrics": copy.deepcopy(summary),
        "counts": {"n_samples": n, "n_scored": n},
        "provenance": {**environment(), "device": "synthetic", "created_at": SYNTHETIC_CREATED_AT, "synthetic": True},
    }
    if extra:
        record.update(extra)
    return record, uids, scores


def write_synthetic_results(results_dir: Path, n_results: int, *, n_samples: int = 200, progress: bool = False) -> int:
    """Write ``n_results`` synthetic result files: scorers x Pythia sizes/checkpoints x splits.

    Every split also gets one blind-baseline record. Returns the number of files written.
    """
    from tqdm import tqdm

    scorers = [f"scorer_{i:02d}" for i in range(20)]
    targets = [(f"pythia-{s}", "main") for s in ("70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b")]
    targets += [("pythia-160m", f"step{s}") for s in (1000, 13000, 33000, 66000, 99000)]
    per_split = len(scorers) * len(targets) + 1
    n_splits = max(1, -(-n_results // per_split))
    written = 0
    bar = tqdm(total=n_results, desc="synthetic results", disable=not progress)
    for k in range(n_splits):
        split_id = f"synthetic/split_{k:03d}"
        track = "control" if k % 5 == 4 else "pretraining"
        if written < n_results:
            rec, uids, scores = synthetic_record(split_id, "none", "blind_bow", kind="blind_baseline", track=track,
                                                 strength=0.1, n=n_samples, seed=k % 5)
            write(results_dir, rec, uids, scores)
            written += 1
            bar.update()
        for i, ((target, rev), scorer) in enumerate(itertools.product(targets, scorers)):
            if written >= n_results:
                break
            rec, uids, scores = synthetic_record(
                split_id, target, scorer, revision=rev, track=track, strength=0.2 + 0.05 * (i % 20),
                n=n_samples, seed=i % 20,
            )
            write(results_dir, rec, uids, scores)
            written += 1
            bar.update()
    bar.close()
    return written
