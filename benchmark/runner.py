"""The main job: suite -> features -> attacks -> metrics -> results, for one (target, split).

The evaluator is the only place where labels meet scores: scorers get uids, texts and
features; labels are read afterwards, aligned by uid, and used for metrics alone.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

import numpy as np

from . import attacks, diagnostics, features, fitting, grouping, metrics, profiling, results, suite, targets
from .errors import MembenchError
from .hashing import sha256_json
from .home import from_portable, portable
from .home import results_dir as default_results_dir

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
        "private": bool(split.spec.extra.get("private", False)),
    }
    if validity is not None:
        block["label_validity"] = validity
    return block


def public_path(path) -> str | None:
    """A model path as records may carry it: relative to ``$MEMBENCH_HOME`` when it lies there,
    else None (a user's own folders and the Hub cache are one machine's layout, never published)."""
    shown = portable(path)
    return shown if shown.startswith("$MEMBENCH_HOME/") else None


def target_block(target, dtype: str, target_id: str | None = None) -> dict:
    """The record's ``target`` block for a loaded target (shared with submissions);
    ``target_id`` overrides the name (a local folder's ``--target-name``)."""
    return {
        "id": target_id or target.id,
        "path": public_path(target.path),
        "revision": target.revision,
        "weights_sha256": target.weights_hash,
        "tokenizer_sha256": target.tokenizer_hash,
        "dtype": dtype,
        "context_rule": getattr(target, "context_rule", targets.CONTEXT_RULE),
        "max_length": target.max_length,
        "n_parameters": target.n_parameters or None,
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


def best_blind_auc(results_dir: Path | None, split_id: str, content_hash: str | None = None) -> float | None:
    """The split's best blind-baseline AUC (top-level ``blind_auc`` of its saved diagnostics,
    ``diagnostics.read_saved``), or None when it has not been diagnosed (for this
    version of the split, with ``content_hash``)."""
    value = (diagnostics.read_saved(split_id, results_dir, content_hash) or {}).get("blind_auc")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


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
    """The demo target's reference model; for a fine-tuned target (``ft/<recipe>``), its base."""
    if target_id == "demo/neox-tiny":
        return targets.DEMO_REFERENCE
    base = (targets.targets().get(target_id).extra.get("base") or {}) if target_id in targets.targets() else {}
    if base.get("id") in targets.targets():
        return base["id"]
    return from_portable(base["path"]) if base.get("path") else None


def scorer_settings(specs) -> list[tuple[str, dict]]:
    """Every (scorer name, canonical params) the specs name, in order, each once: grids
    (``min_k:k=0.05,0.1``) expanded, parameters type-checked against the scorer's signature,
    defaults dropped (``min_k:k=0.2`` is ``min_k``)."""
    out: list[tuple[str, dict]] = []
    for spec in specs:
        for setting in attacks.specs.expand(spec):
            if setting not in out:
                out.append(setting)
    return out


def make_scorers(specs) -> list:
    """(scorer object, canonical params) for every setting the specs name."""
    return [(attacks.specs.build(name, params), params) for name, params in scorer_settings(specs)]


def result_name(scorer, params: dict) -> str:
    """The scorer's name in result files: its name plus canonical non-default parameters."""
    return results.scorer_label(scorer.name, attacks.canonical_params(type(scorer), params))


def default_scorer_set(pool_available: bool, reference: str | None) -> tuple[list[str], list[dict]]:
    """The default scorers (every feature-based one, plus ``reference`` with a reference
    model) and those left out, each with the reason and the fix."""
    names, skipped = [], []
    for name in attacks.FEATURE_SCORERS:
        if pool_available or not attacks.scorers()[name].needs_pool:
            names.append(name)
        else:
            skipped.append({"scorer": name, "reason": "needs a declared non-member pool, and the split "
                            "declares none (no pool.parquet)",
                            "fix": "pass --pool FILE (non-member texts disjoint from the split)"})
    if reference:
        names.append("reference")
    return names, skipped


def default_scorers(pool_available: bool, reference: str | None) -> list[str]:
    return default_scorer_set(pool_available, reference)[0]


def compare_labels(names, settings) -> tuple[list[str], list[tuple[str, dict]]]:
    """Which results of a run ``--compare NAME...`` means, and the settings to add to the run
    for names it does not score yet.

    A name is a result name as printed (``min_k(k=0.1)``), a spec (``min_k:k=0.1``) or a bare
    scorer name; a bare name means the one setting of that scorer in this run (ambiguous when
    the run scores several), else the scorer's default setting (added to the run)."""
    labels = {results.scorer_label(n, p): (n, p) for n, p in settings}
    chosen, extra = [], []
    for name in names:
        spec = name.replace("(", ":", 1).rstrip(")") if "(" in name else name
        (setting, *more) = attacks.specs.expand(spec)
        if more:
            raise MembenchError(f"--compare {name} names several settings", "name one setting per argument")
        label = results.scorer_label(*setting)
        if label not in labels and ":" not in spec:
            same = [lab for lab, (n, _) in labels.items() if n == setting[0]]
            if len(same) > 1:
                raise MembenchError(f"--compare {name} is ambiguous in this run: {', '.join(same)}",
                                    "name the setting as printed, e.g. " + same[0])
            if same:
                label = same[0]
        if label not in labels:
            labels[label] = setting
            extra.append(setting)
        if label in chosen:
            raise MembenchError(f"--compare names {label} twice", "name each scorer once")
        chosen.append(label)
    if len(chosen) < 2:
        raise MembenchError("--compare needs at least two scorers", "e.g. --compare loss min_k zlib")
    return chosen, extra


def run(
    target_id: str,
    split_id: str,
    scorer_names=None,
    *,
    results_dir: Path | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    batch_tokens: int = 16384,
    allow_invalid: bool = False,
    progress: bool = True,
    reference: str | None = None,
    pool: str | Path | None = None,
    counter: dict | None = None,
    skipped: list | None = None,
    target_name: str | None = None,
    calibration: str | None = None,
    fit_budget: attacks.FitBudget | None = None,
    context_rule: str = targets.CONTEXT_RULE,
    verify: bool = False,
    compile: bool = False,
) -> list[dict]:
    """Score ``split`` on ``target`` with each scorer; write and return the result records.

    ``scorer_names``: names, ``name:key=value`` specs or grids (``min_k:k=0.05,0.1``, every
    setting scored from the one cached feature pass); default every built-in feature-based
    scorer (those needing a pool only when a pool is declared: the others are reported in
    ``skipped``, or logged; ``reference`` too when a reference model is given). ``reference``:
    a registry target or local model directory (default for the demo target:
    ``demo/neox-tiny-ref``). ``pool``: a file of non-member texts disjoint from the split
    (default: the split's ``pool.parquet`` when it has one). ``results_dir``: default
    ``home.results_dir()``. ``target_name``: the name a local model directory gets in records
    (default ``local/<folder>-<weights hash>``). ``counter`` accumulates the feature pass's
    ``forward_passes``/``forward_tokens``. ``context_rule``: what is scored of a text longer than
    the context (``targets.CONTEXT_RULES``). ``verify``: re-hash the weights and tokenizer files
    instead of trusting size and mtime. ``compile``: ``torch.compile`` the models' trunks before
    their first forward pass. Targets are handles: with every feature cached, no model or
    tokenizer is loaded.

    Trainable scorers (``fit`` in ``requires``) learn from the calibration subset
    ``calibration`` (default: each scorer's ``default_calibration``) within ``fit_budget``
    (default ``FitBudget()``) and are scored on its evaluated rest only (``fitting``); they run
    first, so a failed fit publishes nothing. With any calibration subset in play (a fit
    scorer, ``calibration``, or a subset some record of the split is already on), every
    whole-split record of the split in ``results_dir`` is also recomputed on that rest
    (``results.derive_on_rest``).
    """
    results_dir = Path(results_dir) if results_dir is not None else default_results_dir()
    spec = suite.get_split(split_id)
    tspec = targets.get_target(target_id, name=target_name)
    validity = check_validity(spec, tspec.id, allow_invalid)
    split = suite.ensure(split_id)
    pool_path = Path(pool) if pool else default_pool(split)
    pool_texts = load_pool(pool_path) if pool_path else None
    explicit_reference = reference
    reference = reference or default_reference(tspec.id)
    if scorer_names is None:
        scorer_names, left_out = default_scorer_set(pool_texts is not None, explicit_reference)
        for item in left_out:
            if skipped is not None:
                skipped.append(item)
            else:
                log.warning("scorer %s skipped: %s (%s)", item["scorer"], item["reason"], item["fix"])
    scorer_objs = make_scorers(scorer_names)
    fit_plan = fitting.plan(spec, [s for s, _ in scorer_objs], calibration)  # unknown subsets: one line, before any load
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
    truncated = stats.truncated()
    labels = split.labels().reindex(uids).to_numpy()
    blind = best_blind_auc(results_dir, split.id, split.content_hash)
    env = results.environment(device)
    pool_info = None
    if pool_texts is not None:  # the file's name only: a local path is one machine's layout
        pool_info = {"file": Path(pool_path).name, "n_texts": len(pool_texts), "sha256": sha256_json(pool_texts)}
    subsets = {name: suite.calibration.select(split, name)
               for name in sorted(set(fit_plan.values()) | ({calibration} if calibration else set()))}
    records = {}
    accesses = [attacks.InProcessAccess(target, granted=scorer.requires, reference=ref_target, split=split,
                                        batch_tokens=batch_tokens, progress=progress, scorer=scorer.name)
                for scorer, _ in scorer_objs]
    fitted = {}  # every fit scorer is fitted and scored before anything is written: a failure publishes nothing
    for i, name in fit_plan.items():
        scorer_objs[i][0].details = {}
        with profiling.phase("scoring", scorer_objs[i][0].name):
            fitted[i] = fitting.fit_and_score(scorer_objs[i][0], subsets[name], uids=uids, texts=texts, stats=stats,
                                              labels=labels, access=accesses[i], budget=fit_budget, pool=pool_texts,
                                              neighbors=neighbors)
    grouped = {}  # group scorers too: a wrong group-level output publishes nothing
    for i, (scorer, _) in enumerate(scorer_objs):
        if grouping.needs_groups(scorer) and i not in fit_plan:
            scorer.details = {}
            with profiling.phase("scoring", scorer.name):
                grouped[i] = grouping.score_groups(scorer, split, target=target, access=accesses[i], stats=stats,
                                                   pool=pool_texts, batch_tokens=batch_tokens, progress=progress)
    for i, (scorer, params) in enumerate(scorer_objs):
        access = accesses[i]
        rows, extra, row_blind = slice(None), {}, blind
        row_uids, row_labels = np.asarray(uids, dtype=object), labels
        if i in grouped:  # one score per group: group labels, figures over groups, no blind excess
            outcome = grouped[i]
            row_uids, row_labels, scores = np.asarray(outcome.group_ids, dtype=object), outcome.labels, outcome.scores
            extra = {"kind": "group", "groups": outcome.block}
        elif i in fitted:
            subset = subsets[fit_plan[i]]
            rows, scores = fitted[i].rest, fitted[i].scores
            extra = {"evaluation_subset": subset.block(), "fit": fitted[i].fit}
            point = fitting.operating_point_block(scorer, labels[rows], scores)
            if point:
                extra["operating_point"] = point
            row_blind = results.rest_blind_auc(results_dir, split, subset)
        else:
            inputs = attacks.ScoringInput(uids=uids, texts=texts, features=stats, access=access,
                                          pool=pool_texts, neighbors=neighbors)
            scorer.details = {}
            with profiling.phase("scoring", scorer.name):
                scores = np.asarray(scorer.score(inputs), dtype=float)
            if scores.shape != (len(uids),):
                raise MembenchError(f"scorer {scorer.name} returned shape {scores.shape}, expected ({len(uids)},)")
        with profiling.phase("metrics"):
            if i in grouped:
                summary, counts = metrics.summarize_groups(row_labels, scores), grouping.counts_block(grouped[i])
            else:
                summary, counts = _metrics_block(row_labels[rows], scores, too_short[rows], row_blind)
                counts.update(features.truncation_counts(truncated[rows], target.context_rule))
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
                      "feature_forward_tokens": feature_counter.get("forward_tokens", 0)
                      + (grouped[i].feature_tokens if i in grouped else 0),
                      "feature_shards_cached": feature_counter.get("shards_cached", 0)}}
        if target.spec.extra.get("recipe"):  # a target built by `membench finetune`: its recipe
            provenance["recipe"] = target.spec.extra["recipe"]
        if ref_target is not None and "reference" in scorer.requires:
            provenance["reference"] = target_block(ref_target, dtype)
        if pool_info and (scorer.needs_pool or scorer.name == "neighborhood"):
            provenance["pool"] = pool_info
        record = {
            "split": _split_block(split, validity),
            "target": target_block(target, dtype, tspec.id),
            "scorer": scorer_block,
            "metrics": summary,
            "counts": counts,
            "provenance": provenance,
        }
        record.update(diagnostics.control_fields(split.spec, summary))  # shift sensitivity on controls
        record.update(extra)
        with profiling.phase("writing"):
            columns = {} if i in grouped else {"truncated": truncated[rows]}  # per-sample flags; a group has none
            records[i] = results.write_record(results_dir, record, row_uids[rows].tolist(), scores, columns=columns)
    written = [records[i][0] for i in sorted(records) if i not in fit_plan and i not in grouped]
    declared = suite.calibration.subsets(split.spec)
    for name in sorted(set(subsets) | set(results.subsets_in(results_dir, split.id))):
        if name not in declared:
            log.warning("records of %s on calibration subset %s left as they are: the subset is no longer declared",
                        split.id, name)
            continue
        subset = subsets.get(name) or suite.calibration.select(split, name)
        # every record of the split on this subset's rest (for a run without fit scorers: those it wrote)
        results.derive_on_rest(results_dir, split, subset, only=None if name in subsets else written)
    return [records[i][1] for i in sorted(records)]


def run_blind(split_id: str, *, results_dir: Path) -> dict:
    """Every blind baseline on ``split`` (results with no target, plus the diagnostics JSON);
    returns the best baseline's record."""
    return diagnostics.write_blind_results(split_id, results_dir)[0]


def compare_records(results_dir: Path, records: list[dict], labels: list[str]) -> dict:
    """Every pair of the named records (result names as written, all of one split and target:
    the records of one run) compared by a paired, class-stratified bootstrap of AUC(a) - AUC(b)
    on the samples both scored, with Holm's correction of the p-values over the pairs.

    Returns ``{"split", "target", "scorers", "correction", "pairs": [{a, b, auc_difference,
    ci95, p_value, p_holm, p_resolution, n_paired, bootstrap}]}``; ``p_resolution`` is one over
    the number of resamples (a p-value of 0 means below it). The intervals are per pair (95%,
    not adjusted)."""
    from itertools import combinations

    by_label = {r["scorer"]["name"]: r for r in records}
    missing = [lab for lab in labels if lab not in by_label]
    if missing:
        raise MembenchError(f"no result for {', '.join(missing)} in this run",
                            f"this run scored: {', '.join(by_label)}")
    chosen = [by_label[lab] for lab in labels]
    keys = {(r["split"]["id"], r["split"]["content_hash"], r["target"]["id"], r["target"].get("revision"))
            for r in chosen}
    if len(keys) != 1:
        raise MembenchError("--compare needs results of one split and one target", "compare within one run")
    split = suite.ensure(chosen[0]["split"]["id"])
    uids = split.samples["uid"].tolist()
    labels_arr = split.labels().reindex(uids).to_numpy()
    scores = {lab: results.read_scores(results.record_path(
        results_dir, r["split"]["id"], r["target"]["id"], lab, r["target"].get("revision")), r)
        .reindex(uids).to_numpy(float) for lab, r in zip(labels, chosen)}
    pairs = []
    for a, b in combinations(labels, 2):
        out = metrics.paired_auc_difference(labels_arr, scores[a], scores[b])
        pairs.append({"a": a, "b": b, **out, "p_resolution": 1.0 / out["bootstrap"]["resamples"]})
    for pair, adjusted in zip(pairs, metrics.holm([p["p_value"] for p in pairs])):
        pair["p_holm"] = adjusted
    return {
        "split": split.id,
        "target": chosen[0]["target"]["id"],
        "scorers": list(labels),
        "correction": {"method": metrics.HOLM, "family_size": len(pairs),
                       "note": "Holm's step-down adjustment of the pairs' p-values (family-wise error); "
                       "the 95% intervals are per pair"},
        "pairs": pairs,
    }


def compare(results_dir: Path, split_id: str, target_id: str, scorer_a: str, scorer_b: str) -> dict:
    """Paired bootstrap of AUC(a) - AUC(b) from two written results on the same split and
    target (result names as written, e.g. ``min_k(k=0.1)``; per-sample scores aligned by uid;
    samples either scorer excluded are dropped)."""
    split = suite.ensure(split_id)
    tspec = targets.get_target(target_id)
    records = []
    for name in (scorer_a, scorer_b):
        path = results.record_path(results_dir, split.id, tspec.id, name, tspec.revision)
        if not path.exists():
            raise MembenchError(f"no result for scorer {name} on {split.id} / {tspec.id} in {results_dir}",
                                f"run it first: membench run --target {target_id} --split {split_id} --scorer {name}")
        records.append(results.read(path))
    pair = compare_records(results_dir, records, [scorer_a, scorer_b])["pairs"][0]
    return {"split": split.id, "target": tspec.id, **pair}
