"""Group scorers in a run: what a ``groups`` scorer sees, and its group-level figures.

For a scorer that declares ``groups`` the harness (never the scorer) picks the rows:

- on a split with attacker-held samples (``attacker.parquet`` beside a per-user split of the
  fine-tuned track: per user, texts the attacker holds that were never trained on), the scorer
  sees those rows and only those: the user-inference threat model, in which the attacker holds
  other samples of a user than the ones trained on;
- on any other split with a ``group`` column, it sees the split's samples.

Each row comes with its group (``ScoringInput.groups``) and the target's token statistics of
its text (computed here for attacker-held rows, counted in the record's usage). The scorer
returns one score per group (``api.group_scores`` checks it, for built-ins and
submissions alike); labels are those of ``group_labels.parquet`` (one per group), read by
``group_view`` after scoring and used for metrics alone. A wrong output, or a split without
groups, is one line before the run writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import features, metrics, profiling
from ..api import ScoringInput, group_scores
from ..errors import MembenchError
from ..hashing import sha256_json
from ..suite import user_level as split_groups
from .scoring import Scored, used_by


@dataclass
class GroupRows:
    table: pd.DataFrame  # uid, text, group of every row the scorer saw
    which: str  # split_groups.ATTACKER_HELD or split_groups.SPLIT_SAMPLES
    feature_tokens: int  # forward tokens spent on the rows' statistics
    base_loss: dict | None = None  # group -> mean per-token loss under the reference (the outlier view)


def prepare_rows(split, *, target, stats=None, batch_tokens: int = 16384, progress: bool = False):
    """(rows table, which rows, their token statistics, forward tokens spent): what a group
    scorer sees on ``split``. ``target`` None: no statistics."""
    table, which = split_groups.rows(split)
    known = set(split_groups.labels(split).index)
    unknown = sorted(set(table["group"]) - known)
    if unknown:
        raise MembenchError(f"split {split.id}: {len(unknown)} group(s) of its rows have no label in "
                            f"{split_groups.GROUP_LABELS_FILE}",
                            "rebuild the split (membench finetune RECIPE --replace)")
    counter: dict = {}
    if which == split_groups.SPLIT_SAMPLES and stats is not None:
        row_stats = stats
    elif target is None:
        row_stats = None
    else:
        ids = features.tokenize(target.tokenizer, table["text"].tolist(), target.max_length)
        row_stats = features.compute(target.model, ids, pad_id=features.pad_id(target.tokenizer),
                                     device=target.device, batch_tokens=batch_tokens, progress=progress,
                                     counter=counter, desc="group rows")
    return table, which, row_stats, int(counter.get("forward_tokens", 0))


def score_groups(plan, handle) -> Scored:
    """Score the plan's split by group with ``handle`` (see the module doc)."""
    spec = plan.spec
    sees_stats = handle.in_process or "features" in handle.requires
    table, which, row_stats, tokens = prepare_rows(plan.split, target=plan.target if sees_stats else None,
                                                   stats=plan.stats, batch_tokens=spec.batch_tokens,
                                                   progress=spec.progress)
    if spec.limit is not None:
        table = table.iloc[:spec.limit]
        row_stats = None if row_stats is None else row_stats.take(np.arange(len(table)))
    access = plan.access_for(handle)
    inputs = ScoringInput(uids=table["uid"].tolist(), texts=table["text"].tolist(),
                          features=row_stats if sees_stats else None, access=access,
                          pool=plan.pool if handle.in_process else None, groups=table["group"].tolist())
    with profiling.phase("scoring", handle.name):
        output = handle.run(inputs)
    ids = sorted(set(inputs.groups))
    scores = group_scores(output, ids, len(table), handle.name)
    rows = GroupRows(table, which, tokens)
    if plan.reference is not None:  # the base's loss space, for the outlier view (not charged to the scorer)
        rows.base_loss = base_loss(plan, handle, table)
    return Scored(handle, ids, scores, None, groups=rows, used=used_by(access))


def base_loss(plan, handle, table) -> dict:
    """Group -> mean per-token loss of its rows under the reference model (the scorer's own
    reference pass over exactly these texts when it made one)."""
    reference = plan.reference
    texts = table["text"].tolist()
    stats = handle.reference_seen(texts)
    if stats is None:
        ids = features.tokenize(reference.tokenizer, texts, reference.max_length)
        stats = features.compute(reference.model, ids, pad_id=features.pad_id(reference.tokenizer),
                                 device=reference.device, batch_tokens=plan.spec.batch_tokens, desc="base loss")
    loss = [-float(np.mean(stats.sample(i)["logprob"])) if len(stats.sample(i)["logprob"]) else np.nan
            for i in range(len(table))]
    frame = pd.DataFrame({"g": table["group"], "l": loss}).dropna()
    return frame.groupby("g")["l"].mean().to_dict()


OUTLIER_MEASURE = ("a user's mean distance to the other users in the base model's loss space: each user is the mean "
                   "per-token loss of its scored rows under the reference model (the base by default); the distance "
                   "between two users is the absolute difference of those losses")


def per_user_view(split, ids: list[str], labels, scores, base_loss: dict | None) -> dict:
    """The view user-inference papers ask for (aggregates only): AUC over users binned by how
    many texts a user contributed to the split (trained texts for member users, held-out texts
    for the others), and, with ``base_loss`` (group -> mean per-token loss under the base), by
    the outlier measure (``OUTLIER_MEASURE``)."""
    samples = split.samples
    contributed = samples["group"].astype(str).value_counts().reindex(ids).fillna(0).to_numpy(float)
    view = {"by_contribution": metrics.auc_by_bins(labels, scores, contributed),
            "contribution": "texts of the user in the split (trained for member users, held out for the others)"}
    if base_loss:
        loss = np.array([base_loss.get(g, np.nan) for g in ids], float)
        if np.isfinite(loss).all() and len(loss) > 2:
            distance = np.abs(loss[:, None] - loss[None, :]).sum(1) / (len(loss) - 1)
            view["by_outlier"] = metrics.auc_by_bins(labels, scores, distance)
            view["outlier_measure"] = OUTLIER_MEASURE
    return view


def group_view(split, scored: Scored) -> tuple[np.ndarray, dict]:
    """(the scored groups' labels, the record's ``groups`` block): labels read here, after scoring."""
    rows = scored.groups
    ids = scored.ids
    y = split_groups.labels(split).reindex(ids).to_numpy(int)
    if len(np.unique(y)) != 2:
        raise MembenchError(f"split {split.id}: the scored groups are all of one class",
                            "group metrics need member and non-member groups")
    sizes = rows.table["group"].value_counts()
    block = {
        "rows": rows.which,
        "n_groups": len(ids),
        "n_rows": len(rows.table),
        "rows_per_group": {"min": int(sizes.min()), "max": int(sizes.max())},
        "rows_sha256": sha256_json(sorted(rows.table["uid"].tolist())),
        "labels": split_groups.GROUP_LABELS_FILE,
        "source": ("attacker.parquet beside the split: per user, texts the attacker holds, never trained on"
                   if rows.which == split_groups.ATTACKER_HELD else "the group column of the split's samples.parquet"),
        "per_user_view": per_user_view(split, ids, y, scored.scores, rows.base_loss),
    }
    return y, block


def group_counts(scored: Scored) -> dict:
    """A group-level record's ``counts``: its units are groups."""
    n = len(scored.ids)
    return {"n_samples": n, "n_scored": n, "unit": "group", "n_rows": len(scored.groups.table),
            "exclusion_rule": "none: every group gets a finite score, or the run fails"}
