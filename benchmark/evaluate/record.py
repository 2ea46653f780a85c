"""``build_record``: the one place a result record is made, for built-ins and submissions alike.

It is where labels meet scores: a ``Scored`` (a handle's checked output over rows or groups)
is paired here with the labels of exactly those rows or groups, and the record gets its
metrics (over the finite scores; the rest excluded and counted, never a NaN metric), its
counts, the excess over the split's best blind baseline (on the same rows: a record on a
calibration subset's rest takes the rest's blind AUC), the truncation columns, and its
provenance: the run's environment, the handle's own part (``ScorerHandle.provenance`` and
``record_fields``: a built-in's usage; a submission's sandbox, metadata and usage), the
target's fine-tuning recipe, the reference model and the pool where the scorer used them.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from .. import diagnostics, features, metrics, profiling, results, targets
from ..errors import MembenchError
from ..home import portable
from .fit import operating_point_block
from .group_level import group_counts, group_view
from .scoring import Scored

NO_TARGET = "none"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def split_block(split, validity=None) -> dict:
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
    """The record's ``target`` block for a loaded target; ``target_id`` overrides the name (a
    local folder's ``--target-name``)."""
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


def metrics_block(labels: np.ndarray, scores: np.ndarray, too_short: np.ndarray | None = None,
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


def check_declared(scored: Scored) -> None:
    """Refuse a record whose scorer declares less than its run used: every capability the
    harness's model access counted (``Scored.used``) must be among the scorer's ``requires``
    (a record claiming no model access never carries model-derived scores of this run)."""
    handle = scored.handle
    undeclared = [c for c in scored.used if c not in handle.requires]
    if undeclared:
        raise MembenchError(f"scorer {handle.name} used {', '.join(undeclared)} but declares only "
                            f"{', '.join(handle.requires) or 'nothing'}; its record is refused",
                            "declare every capability the scorer calls (requires, and submission.yaml's capabilities)")


def build_record(plan, scored: Scored) -> tuple[dict, dict]:
    """(the record of ``scored`` on ``plan``'s split, its per-sample columns beside the
    scores). Reads the labels of the scored rows or groups, and nothing of the scorer."""
    check_declared(scored)
    spec, split, handle = plan.spec, plan.split, scored.handle
    extra, columns, group_tokens = {}, {}, 0
    with profiling.phase("metrics"):
        if scored.groups is not None:  # one score per group: group labels, figures over groups, group-level blind
            labels, block = group_view(split, scored)
            summary = metrics.summarize_groups(labels, scored.scores, blind_auc=plan.blind_group)
            counts = group_counts(scored)
            extra = {"kind": "group", "groups": block}
            group_tokens = scored.groups.feature_tokens
        else:
            rows = scored.rows
            labels = plan.labels()[rows]
            blind = plan.blind
            if scored.subset is not None:
                blind = results.rest_blind_auc(spec.diagnostics_from, split, scored.subset)
            too_short = plan.stats.n_scored()[rows] == 0 if plan.stats is not None else None
            summary, counts = metrics_block(labels, scored.scores, too_short, blind)
            if plan.stats is not None:  # per-sample truncation flags (a group has none)
                columns["truncated"] = plan.stats.truncated()[rows]
                counts.update(features.truncation_counts(columns["truncated"], plan.target.context_rule))
            if scored.subset is not None:  # on a subset's evaluated rest: a trainable scorer, or any on a private split
                extra = {"evaluation_subset": scored.subset.block()}
                if scored.fit is not None:
                    extra["fit"] = scored.fit
                    point = operating_point_block(handle, labels, scored.scores)
                    if point:
                        extra["operating_point"] = point
    provenance = {**results.environment(spec.device), "created_at": now(), **handle.provenance({
        "feature_forward_tokens": plan.feature_usage.get("forward_tokens", 0) + group_tokens,
        "feature_shards_cached": plan.feature_usage.get("shards_cached", 0)})}
    target = plan.target
    if target is not None and target.spec.extra.get("recipe"):  # a target built by `membench finetune`
        provenance["recipe"] = target.spec.extra["recipe"]
    if plan.reference is not None and "reference" in handle.requires:
        provenance["reference"] = target_block(plan.reference, spec.dtype)
    if plan.pool_info and handle.uses_pool:
        provenance["pool"] = plan.pool_info
    record = {
        "split": split_block(split, plan.validity),
        "target": (target_block(target, spec.dtype, plan.target_id) if target is not None
                   else {"id": NO_TARGET, "note": "text-only submission: no model access"}),
        "scorer": handle.scorer_block(),
        "metrics": summary,
        "counts": counts,
        "provenance": provenance,
    }
    record.update(diagnostics.control_fields(split.spec, summary))  # shift sensitivity on controls
    record.update(handle.record_fields())
    record.update(extra)
    return record, columns
