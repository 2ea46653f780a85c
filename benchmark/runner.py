"""The main job: suite -> features -> attacks -> metrics -> results, for one (target, split).

The evaluator is the only place where labels meet scores: scorers get uids, texts and
features; labels are read afterwards, aligned by uid, and used for metrics alone.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

import numpy as np

from . import attacks, diagnostics, features, metrics, results, suite, targets
from .errors import MembenchError
from .hashing import sha256_file

log = logging.getLogger(__name__)

BLIND_TARGET = "none"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def check_validity(spec, target_id: str, allow_invalid: bool) -> dict:
    valid = spec.labels_valid_for(target_id)
    if not valid and not allow_invalid:
        raise MembenchError(
            f"split {spec.id} is not membership ground truth for target {target_id} "
            f"(valid for: {', '.join(spec.valid_targets) or 'none'})",
            "choose a valid pair, or pass --allow-invalid to run anyway with the result marked",
        )
    return {"valid": valid, "allowed_invalid": not valid}


def _split_block(split, validity=None) -> dict:
    block = {
        "id": split.id,
        "content_hash": split.content_hash,
        "track": split.spec.track,
        "family": split.spec.family,
    }
    if validity is not None:
        block["label_validity"] = validity
    return block


def target_block(target, dtype: str) -> dict:
    """The record's ``target`` block for a loaded target (shared with submissions)."""
    return {
        "id": target.id,
        "path": target.path,
        "revision": target.revision,
        "weights_sha256": target.weights_hash,
        "tokenizer_sha256": target.tokenizer_hash,
        "dtype": dtype,
        "context_rule": targets.CONTEXT_RULE,
        "max_length": target.max_length,
    }


def _metrics_block(labels: np.ndarray, scores: np.ndarray) -> tuple[dict, dict]:
    keep = np.isfinite(scores)
    summary = metrics.summarize(labels[keep], scores[keep])
    summary["roc"] = metrics.roc_points(labels[keep], scores[keep])
    counts = {
        "n_samples": int(len(scores)),
        "n_scored": int(keep.sum()),
        "excluded_no_scored_tokens": int((~keep).sum()),
    }
    return summary, counts


def run(
    target_id: str,
    split_id: str,
    scorer_names=attacks.FEATURE_SCORERS,
    *,
    results_dir: Path,
    device: str = "cpu",
    dtype: str = "float32",
    batch_tokens: int = 16384,
    allow_invalid: bool = False,
    progress: bool = True,
) -> list[dict]:
    """Score ``split`` on ``target`` with each scorer; write and return the result records."""
    spec = suite.get_split(split_id)
    tspec = targets.get_target(target_id)
    scorer_objs = [attacks.get_scorer(name) for name in scorer_names]
    validity = check_validity(spec, tspec.id, allow_invalid)
    split = suite.ensure(split_id)
    target = targets.load_target(target_id, device=device, dtype=dtype)
    stats = features.get_features(target, split, batch_tokens=batch_tokens, progress=progress)
    uids = split.samples["uid"].tolist()
    inputs = attacks.ScoringInput(uids=uids, texts=split.samples["text"].tolist(), features=stats)
    labels = split.labels().reindex(uids).to_numpy()
    env = results.environment(device)
    records = []
    for scorer in scorer_objs:
        scores = np.asarray(scorer.score(inputs), dtype=float)
        if scores.shape != (len(uids),):
            raise MembenchError(f"scorer {scorer.name} returned shape {scores.shape}, expected ({len(uids)},)")
        summary, counts = _metrics_block(labels, scores)
        record = {
            "split": _split_block(split, validity),
            "target": target_block(target, dtype),
            "scorer": {
                "name": scorer.name,
                "version": scorer.version,
                "params": scorer.params(),
                "requires": list(scorer.requires),
                "code_sha256": type(scorer).code_hash(),
                "kind": "attack",
            },
            "metrics": summary,
            "counts": counts,
            "provenance": {**env, "created_at": _now()},
        }
        record.update(diagnostics.control_fields(split.spec, summary))  # shift sensitivity on controls
        results.write(results_dir, record, uids, scores)
        records.append(record)
    return records


def run_blind(split_id: str, *, results_dir: Path) -> dict:
    """Every blind baseline on ``split`` (results with no target, plus the diagnostics JSON);
    returns the best baseline's record."""
    return diagnostics.write_blind_results(split_id, results_dir)[0]
