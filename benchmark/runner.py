"""The main job: suite -> features -> attacks -> metrics -> results, for one (target, split).

The evaluator is the only place where labels meet scores: scorers get uids, texts and
features; labels are read afterwards, aligned by uid, and used for metrics alone.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

import numpy as np

from . import attacks, diagnostics, features, metrics, profiling, results, suite, targets
from .errors import MembenchError
from .hashing import sha256_json
from .home import portable

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
        "path": portable(target.path),
        "revision": target.revision,
        "weights_sha256": target.weights_hash,
        "tokenizer_sha256": target.tokenizer_hash,
        "dtype": dtype,
        "context_rule": getattr(target, "context_rule", targets.CONTEXT_RULE),
        "max_length": target.max_length,
    }


def _metrics_block(labels: np.ndarray, scores: np.ndarray, too_short: np.ndarray | None = None,
                   blind_auc: float | None = None) -> tuple[dict, dict]:
    """Metrics over the finite scores; the rest are excluded and counted, never a NaN metric."""
    keep = np.isfinite(scores)
    too_short = np.zeros(len(scores), bool) if too_short is None else too_short
    summary = metrics.summarize(labels[keep], scores[keep], blind_auc=blind_auc)
    summary["roc"] = metrics.roc_points(labels[keep], scores[keep])
    counts = {
        "n_samples": int(len(scores)),
        "n_scored": int(keep.sum()),
        "excluded_no_scored_tokens": int((~keep & too_short).sum()),
        "excluded_other_nonfinite": int((~keep & ~too_short).sum()),
        "exclusion_rule": "texts with fewer than two tokens on the target have no scored token "
        "and are excluded; so is any other non-finite score",
    }
    return summary, counts


def diagnostics_file(results_dir: Path, split_id: str) -> Path:
    """Where the diagnostics stage writes a split's blind-baseline summary."""
    return Path(results_dir, "_diagnostics", *split_id.split("/")).with_name(
        split_id.split("/")[-1] + ".json"
    )


def best_blind_auc(results_dir: Path, split_id: str) -> float | None:
    """The split's best blind-baseline AUC (top-level ``blind_auc`` of
    ``<results_dir>/_diagnostics/<split id>.json``), or None when it has not been diagnosed."""
    import json

    path = diagnostics_file(results_dir, split_id)
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text()).get("blind_auc")
        return float(value) if value is not None else None
    except (ValueError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable diagnostics file %s (%s)", path, exc)
        return None


def load_pool(path) -> list[str]:
    """Texts of a declared pool file: parquet, jsonl, json or csv with a ``text`` column, or
    a .txt file with one text per blank-line-separated paragraph."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise MembenchError(f"pool file {path} does not exist", "pass an existing file to --pool")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return [t.strip() for t in path.read_text().split("\n\n") if t.strip()]
    readers = {".parquet": pd.read_parquet, ".jsonl": lambda p: pd.read_json(p, lines=True),
               ".json": pd.read_json, ".csv": pd.read_csv}
    if suffix not in readers:
        raise MembenchError(f"pool file {path} has an unknown format",
                            "use .parquet, .jsonl, .json, .csv (a `text` column) or .txt")
    table = readers[suffix](path)
    if "text" not in table.columns:
        raise MembenchError(f"pool file {path} has no `text` column", "name the text column `text`")
    return [str(t) for t in table["text"].dropna()]


def default_pool(split) -> Path | None:
    """The pool a split declares: ``pool.parquet`` beside it (the demo split has one)."""
    path = Path(split.path) / "pool.parquet"
    return path if path.exists() else None


def default_reference(target_id: str) -> str | None:
    return targets.DEMO_REFERENCE if target_id == "demo/neox-tiny" else None


def parse_scorer(spec: str) -> tuple[str, dict]:
    """``name`` or ``name:key=value,key=value`` (values parsed as numbers when they are)."""
    name, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise MembenchError(f"scorer parameter '{item}' in '{spec}' is not key=value",
                                "write e.g. --scorer min_k:k=0.1")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        params[key.strip()] = value
    return name.strip(), params


def make_scorers(specs) -> list:
    out = []
    for spec in specs:
        name, params = parse_scorer(spec) if isinstance(spec, str) else spec
        try:
            out.append((attacks.get_scorer(name, **params), params))
        except TypeError as exc:
            raise MembenchError(f"scorer {name} does not take parameters {params} ({exc})") from None
        except ValueError as exc:
            raise MembenchError(f"scorer {name}: {exc}") from None
    return out


def result_name(scorer, params: dict) -> str:
    """The scorer's name in result files: its name, plus non-default parameters if any."""
    if not params:
        return scorer.name
    return scorer.name + "(" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + ")"


def default_scorers(pool_available: bool, reference: str | None) -> list[str]:
    names = [n for n in attacks.FEATURE_SCORERS if pool_available or not attacks.scorers()[n].needs_pool]
    if reference:
        names.append("reference")
    return names


def run(
    target_id: str,
    split_id: str,
    scorer_names=None,
    *,
    results_dir: Path,
    device: str = "cpu",
    dtype: str = "float32",
    batch_tokens: int = 16384,
    allow_invalid: bool = False,
    progress: bool = True,
    reference: str | None = None,
    pool: str | Path | None = None,
    counter: dict | None = None,
    context_rule: str = targets.CONTEXT_RULE,
    verify: bool = False,
    compile: bool = False,
) -> list[dict]:
    """Score ``split`` on ``target`` with each scorer; write and return the result records.

    ``scorer_names``: names or ``name:key=value`` specs; default every built-in feature-based
    scorer (those needing a pool only when a pool is declared; ``reference`` too when a
    reference model is given). ``reference``: a registry target or local model directory
    (default for the demo target: ``demo/neox-tiny-ref``). ``pool``: a file of non-member
    texts disjoint from the split (default: the split's ``pool.parquet`` when it has one).
    ``counter`` accumulates the feature pass's ``forward_passes``/``forward_tokens``.
    ``context_rule``: what is scored of a text longer than the context (``targets.CONTEXT_RULES``).
    ``verify``: re-hash the weights and tokenizer files instead of trusting size and mtime.
    ``compile``: ``torch.compile`` the models' trunks before their first forward pass.
    Targets are handles: with every feature cached, no model or tokenizer is loaded.
    """
    spec = suite.get_split(split_id)
    tspec = targets.get_target(target_id)
    validity = check_validity(spec, tspec.id, allow_invalid)
    split = suite.ensure(split_id)
    pool_path = Path(pool) if pool else default_pool(split)
    pool_texts = load_pool(pool_path) if pool_path else None
    explicit_reference = reference
    reference = reference or default_reference(tspec.id)
    if scorer_names is None:
        scorer_names = default_scorers(pool_texts is not None, explicit_reference)
    scorer_objs = make_scorers(scorer_names)
    for scorer, _ in scorer_objs:
        if scorer.needs_pool and pool_texts is None:
            raise MembenchError(f"scorer {scorer.name} needs a declared non-member pool for {split_id}",
                                "pass --pool FILE (texts disjoint from the split)")
        if "reference" in scorer.requires and reference is None:
            raise MembenchError(f"scorer {scorer.name} needs a reference model",
                                "pass --reference TARGET (a registry id or a local model directory)")
    handle = dict(device=device, dtype=dtype, context_rule=context_rule, verify=verify, compile=compile)
    target = targets.load_target(target_id, **handle)
    ref_target = None
    if reference and any("reference" in s.requires for s, _ in scorer_objs):
        ref_target = targets.load_target(reference, **handle)
    counter = counter if counter is not None else {}
    feature_counter: dict = {}
    stats = features.get_features(target, split, batch_tokens=batch_tokens, progress=progress,
                                  counter=feature_counter)
    for key in ("forward_passes", "forward_tokens"):
        counter[key] = counter.get(key, 0) + feature_counter.get(key, 0)
    uids = split.samples["uid"].tolist()
    texts = split.samples["text"].tolist()
    neighbors = None
    if getattr(split, "has_neighbors", False):
        neighbors = {u: list(v) for u, v in split.neighbors().items()}
    too_short = stats.n_scored() == 0
    labels = split.labels().reindex(uids).to_numpy()
    blind = best_blind_auc(results_dir, split.id)
    env = results.environment(device)
    pool_info = None
    if pool_texts is not None:
        pool_info = {"file": str(pool_path), "n_texts": len(pool_texts), "sha256": sha256_json(pool_texts)}
    records = []
    for scorer, params in scorer_objs:
        access = attacks.InProcessAccess(target, granted=scorer.requires, reference=ref_target,
                                         split=split, batch_tokens=batch_tokens, progress=progress)
        inputs = attacks.ScoringInput(uids=uids, texts=texts, features=stats, access=access,
                                      pool=pool_texts, neighbors=neighbors)
        scorer.details = {}
        with profiling.phase("scoring", scorer.name):
            scores = np.asarray(scorer.score(inputs), dtype=float)
        if scores.shape != (len(uids),):
            raise MembenchError(f"scorer {scorer.name} returned shape {scores.shape}, expected ({len(uids)},)")
        with profiling.phase("metrics"):
            summary, counts = _metrics_block(labels, scores, too_short, blind)
        counts.update(features.truncation_counts(stats, target.context_rule))
        scorer_block = {
            "name": result_name(scorer, params),
            "version": scorer.version,
            "params": scorer.params(),
            "requires": list(scorer.requires),
            "code_sha256": type(scorer).code_hash(),
            "kind": "attack",
        }
        if scorer.details:
            scorer_block["details"] = scorer.details
        provenance = {**env, "created_at": _now(), "usage": {**access.usage,
                      "feature_forward_tokens": feature_counter.get("forward_tokens", 0),
                      "feature_shards_cached": feature_counter.get("shards_cached", 0)}}
        if ref_target is not None and "reference" in scorer.requires:
            provenance["reference"] = target_block(ref_target, dtype)
        if pool_info and (scorer.needs_pool or scorer.name == "neighborhood"):
            provenance["pool"] = pool_info
        record = {
            "split": _split_block(split, validity),
            "target": target_block(target, dtype),
            "scorer": scorer_block,
            "metrics": summary,
            "counts": counts,
            "provenance": provenance,
        }
        record.update(diagnostics.control_fields(split.spec, summary))  # shift sensitivity on controls
        with profiling.phase("writing"):
            path = results.write(results_dir, record, uids, scores, columns={"truncated": stats.truncated()})
            records.append(results.read(path))  # the record as written (schema, per_sample)
    return records


def run_blind(split_id: str, *, results_dir: Path) -> dict:
    """Every blind baseline on ``split`` (results with no target, plus the diagnostics JSON);
    returns the best baseline's record."""
    return diagnostics.write_blind_results(split_id, results_dir)[0]


def compare(results_dir: Path, split_id: str, target_id: str, scorer_a: str, scorer_b: str) -> dict:
    """Paired bootstrap of AUC(a) - AUC(b) from two written results on the same split and
    target (per-sample scores aligned by uid; samples either scorer excluded are dropped)."""
    import pandas as pd

    split = suite.ensure(split_id)
    target_name = targets.get_target(target_id).id
    frames = []
    for name in (scorer_a, scorer_b):
        path = results.record_path(results_dir, split.id, target_name, name)
        if not path.exists():
            raise MembenchError(f"no result for scorer {name} on {split.id} / {target_name} in {results_dir}",
                                f"run it first: membench run --target {target_id} --split {split_id} --scorer {name}")
        frames.append(pd.read_parquet(path.with_suffix(".scores.parquet")).set_index("uid")["score"])
    uids = split.samples["uid"].tolist()
    labels = split.labels().reindex(uids).to_numpy()
    out = metrics.paired_auc_difference(labels, frames[0].reindex(uids).to_numpy(float),
                                        frames[1].reindex(uids).to_numpy(float))
    return {"split": split.id, "target": target_name, "a": scorer_a, "b": scorer_b, **out}
