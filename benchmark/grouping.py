"""Group scorers in a run: what a ``groups`` scorer sees, and its group-level figures.

For a scorer that declares ``groups`` the harness (never the scorer) picks the rows:

- on a split with attacker-held samples (``attacker.parquet`` beside a per-user split of the
  fine-tuned track: per user, texts the attacker holds that were never trained on), the scorer
  sees those rows and only those: the user-inference threat model, in which the attacker holds
  other samples of a user than the ones trained on;
- on any other split with a ``group`` column, it sees the split's samples.

Each row comes with its group (``ScoringInput.groups``) and the target's token statistics of
its text (computed here for attacker-held rows, counted in the record's usage). The scorer
returns one score per group (``attacks.groups.group_scores`` checks it); labels are those of
``group_labels.parquet`` (one per group), read here after scoring and used for metrics alone.
A wrong output, or a split without groups, is one line before the run writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import pandas as pd

from . import attacks, features
from .suite import groups as split_groups
from .attacks.groups import group_scores
from .errors import MembenchError
from .hashing import sha256_json

def needs_groups(scorer) -> bool:
    return "groups" in getattr(scorer, "requires", ())


@dataclass
class GroupOutcome:
    group_ids: list[str]
    labels: np.ndarray  # one per group, aligned with group_ids
    scores: np.ndarray  # one per group
    block: dict  # the record's ``groups`` block
    feature_tokens: int  # forward tokens spent on the rows' statistics


def score_groups(scorer, split, *, target, access, stats=None, pool=None, batch_tokens: int = 16384,
                 progress: bool = False) -> GroupOutcome:
    """Score ``split``'s groups with ``scorer`` (see the module doc). ``stats``: the split's
    cached statistics (used when the rows are the split's samples)."""
    table, which = split_groups.rows(split)
    labels_by_group = split_groups.labels(split)
    groups = table["group"].astype(str).tolist()
    unknown = sorted(set(groups) - set(labels_by_group.index))
    if unknown:
        raise MembenchError(f"split {split.id}: {len(unknown)} group(s) of its rows have no label in "
                            f"{split_groups.GROUP_LABELS_FILE}",
                            "rebuild the split (membench finetune RECIPE --replace)")
    texts = table["text"].tolist()
    counter: dict = {}
    if which == split_groups.SPLIT_SAMPLES and stats is not None:
        row_stats = stats
    else:
        ids = features.tokenize(target.tokenizer, texts, target.max_length)
        row_stats = features.compute(target.model, ids, pad_id=features.pad_id(target.tokenizer),
                                     device=target.device, batch_tokens=batch_tokens, progress=progress,
                                     counter=counter, desc="group rows")
    inputs = attacks.ScoringInput(uids=table["uid"].tolist(), texts=texts, features=row_stats, access=access,
                                  pool=pool, groups=groups)
    try:
        output = scorer.score(inputs)
    except MembenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the scorer is one line
        text = (str(exc).strip().splitlines() or [""])[0][:300]
        raise MembenchError(f"scorer {scorer.name}: score() raised {type(exc).__name__}" + (f": {text}" if text else ""),
                            "fix the scorer and run again; nothing of this run was published") from None
    ids = inputs.group_ids
    scores = group_scores(output, ids, len(table), scorer.name)
    y = labels_by_group.reindex(ids).to_numpy(int)
    if len(np.unique(y)) != 2:
        raise MembenchError(f"split {split.id}: the scored groups are all of one class",
                            "group metrics need member and non-member groups")
    block = {
        "rows": which,
        "n_groups": len(ids),
        "n_rows": len(table),
        "rows_per_group": {"min": int(pd.Series(groups).value_counts().min()),
                           "max": int(pd.Series(groups).value_counts().max())},
        "rows_sha256": sha256_json(sorted(table["uid"].tolist())),
        "labels": split_groups.GROUP_LABELS_FILE,
        "source": ("attacker.parquet beside the split: per user, texts the attacker holds, never trained on"
                   if which == split_groups.ATTACKER_HELD else "the group column of the split's samples.parquet"),
    }
    return GroupOutcome(group_ids=ids, labels=y, scores=scores, block=block,
                        feature_tokens=int(counter.get("forward_tokens", 0)))


def counts_block(outcome: GroupOutcome) -> dict:
    """A group-level record's ``counts``: its units are groups."""
    n = len(outcome.group_ids)
    return {"n_samples": n, "n_scored": n, "unit": "group", "n_rows": outcome.block["n_rows"],
            "exclusion_rule": "none: every group gets a finite score, or the run fails"}
