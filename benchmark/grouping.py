"""Group scorers in a run: what a ``groups`` scorer sees, and its group-level figures.

For a scorer that declares ``groups`` the harness (never the scorer) picks the rows:

- on a split with attacker-held samples (``attacker.parquet`` beside a per-user split of the
  fine-tuned track: per user, texts the attacker holds that were never trained on), the scorer
  sees those rows and only those: the user-inference threat model, in which the attacker holds
  other samples of a user than the ones trained on;
- on any other split with a ``group`` column, it sees the split's samples.

Each row comes with its group (``ScoringInput.groups``) and the target's token statistics of
its text (computed here for attacker-held rows, counted in the record's usage). The scorer
returns one score per group (``api.group_scores`` checks it); labels are those of
``group_labels.parquet`` (one per group), read here after scoring and used for metrics alone.
A wrong output, or a split without groups, is one line before the run writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import attacks, features
from .api import group_scores
from .errors import MembenchError
from .hashing import sha256_json
from .suite import user_level as split_groups

def needs_groups(scorer) -> bool:
    return "groups" in getattr(scorer, "requires", ())


@dataclass
class GroupOutcome:
    group_ids: list[str]
    labels: np.ndarray  # one per group, aligned with group_ids
    scores: np.ndarray  # one per group
    block: dict  # the record's ``groups`` block
    feature_tokens: int  # forward tokens spent on the rows' statistics


def prepare_rows(split, *, target, stats=None, batch_tokens: int = 16384, progress: bool = False):
    """(rows table, which rows, their token statistics, forward tokens spent): what a group
    scorer sees on ``split`` (built-in or sandboxed alike)."""
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


OUTLIER_MEASURE = ("a user's mean distance to the other users in the base model's loss space: each user is the mean "
                   "per-token loss of its scored rows under the reference model (the base by default); the distance "
                   "between two users is the absolute difference of those losses")


def per_user_view(split, ids: list[str], labels, scores, base_loss: dict | None) -> dict:
    """The view user-inference papers ask for (aggregates only): AUC over users binned by how
    many texts a user contributed to the split (trained texts for member users, held-out texts
    for the others), and, with ``base_loss`` (group -> mean per-token loss under the base), by
    the outlier measure (``OUTLIER_MEASURE``)."""
    from . import metrics

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


def outcome(split, table, which: str, output, scorer_name: str, feature_tokens: int = 0,
            base_loss: dict | None = None) -> GroupOutcome:
    """Check a group scorer's ``output`` (``api.group_scores``) and pair it with the
    groups' labels (read here, after scoring); ``base_loss`` feeds the per-user view."""
    groups = table["group"].tolist()
    ids = sorted(set(groups))
    scores = group_scores(output, ids, len(table), scorer_name)
    y = split_groups.labels(split).reindex(ids).to_numpy(int)
    if len(np.unique(y)) != 2:
        raise MembenchError(f"split {split.id}: the scored groups are all of one class",
                            "group metrics need member and non-member groups")
    sizes = pd.Series(groups).value_counts()
    block = {
        "rows": which,
        "n_groups": len(ids),
        "n_rows": len(table),
        "rows_per_group": {"min": int(sizes.min()), "max": int(sizes.max())},
        "rows_sha256": sha256_json(sorted(table["uid"].tolist())),
        "labels": split_groups.GROUP_LABELS_FILE,
        "source": ("attacker.parquet beside the split: per user, texts the attacker holds, never trained on"
                   if which == split_groups.ATTACKER_HELD else "the group column of the split's samples.parquet"),
        "per_user_view": per_user_view(split, ids, y, scores, base_loss),
    }
    return GroupOutcome(group_ids=ids, labels=y, scores=scores, block=block, feature_tokens=feature_tokens)


def score_groups(scorer, split, *, target, access, stats=None, pool=None, batch_tokens: int = 16384,
                 progress: bool = False) -> GroupOutcome:
    """Score ``split``'s groups with the in-process ``scorer`` (see the module doc). ``stats``:
    the split's cached statistics (used when the rows are the split's samples)."""
    table, which, row_stats, tokens = prepare_rows(split, target=target, stats=stats, batch_tokens=batch_tokens,
                                                   progress=progress)
    inputs = attacks.ScoringInput(uids=table["uid"].tolist(), texts=table["text"].tolist(), features=row_stats,
                                  access=access, pool=pool, groups=table["group"].tolist())
    try:
        output = scorer.score(inputs)
    except MembenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the scorer is one line
        text = (str(exc).strip().splitlines() or [""])[0][:300]
        raise MembenchError(f"scorer {scorer.name}: score() raised {type(exc).__name__}" + (f": {text}" if text else ""),
                            "fix the scorer and run again; nothing of this run was published") from None
    base_loss = None
    reference = getattr(access, "reference_target", None)
    if reference is not None:  # the base's loss space, for the outlier view (not charged to the scorer)
        texts = table["text"].tolist()
        stats_ref = access.reference_seen(texts) if hasattr(access, "reference_seen") else None
        if stats_ref is None:  # the scorer did not run the reference on these texts itself
            ids = features.tokenize(reference.tokenizer, texts, reference.max_length)
            stats_ref = features.compute(reference.model, ids, pad_id=features.pad_id(reference.tokenizer),
                                         device=reference.device, batch_tokens=batch_tokens, desc="base loss")
        loss = [-float(np.mean(stats_ref.sample(i)["logprob"])) if len(stats_ref.sample(i)["logprob"]) else np.nan
                for i in range(len(table))]
        frame = pd.DataFrame({"g": table["group"], "l": loss}).dropna()
        base_loss = frame.groupby("g")["l"].mean().to_dict()
    return outcome(split, table, which, output, scorer.name, tokens, base_loss)


def counts_block(outcome: GroupOutcome) -> dict:
    """A group-level record's ``counts``: its units are groups."""
    n = len(outcome.group_ids)
    return {"n_samples": n, "n_scored": n, "unit": "group", "n_rows": outcome.block["n_rows"],
            "exclusion_rule": "none: every group gets a finite score, or the run fails"}
