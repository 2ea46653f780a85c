"""User-level splits: the groups (users) of a split and their labels.

A user-level split (a per-user recipe's ``finetune/<id>``) has a ``group`` column in
``samples.parquet`` (the opaque user of every text), ``group_labels.parquet`` (one label per
user: 1 = the user's data was trained on) and, under the user-inference threat model,
``attacker.parquet`` (per user, texts the attacker holds that were never trained on). All three
are hashed in the split's manifest.

``rows(split)`` is what a ``groups`` scorer sees: the attacker-held rows where the split has
them, else the split's own samples; ``labels(split)`` the group labels (evaluator use only).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import MembenchError

ATTACKER_FILE = "attacker.parquet"
GROUP_LABELS_FILE = "group_labels.parquet"
ATTACKER_HELD = "attacker-held"
SPLIT_SAMPLES = "split samples"


def labels(split) -> pd.Series:
    """Label of every group of ``split`` (1 = trained on), indexed by group id."""
    path = Path(split.path) / GROUP_LABELS_FILE
    if not path.is_file():
        raise MembenchError(f"split {split.id} has no group labels ({GROUP_LABELS_FILE})",
                            "group scorers need a user-level split, e.g. one from a per-user recipe "
                            "(assign: user) of `membench finetune`")
    table = pd.read_parquet(path)
    return pd.Series(table["label"].astype(int).to_numpy(), index=table["group"].astype(str).to_numpy(), name="label")


def rows(split) -> tuple[pd.DataFrame, str]:
    """(uid, text, group) rows a group scorer sees, and which rows they are
    (``attacker-held`` or ``split samples``)."""
    attacker = Path(split.path) / ATTACKER_FILE
    if attacker.is_file():
        table = pd.read_parquet(attacker)
        table = table.assign(group=table["group"].astype(str))
        return table[["uid", "text", "group"]].reset_index(drop=True), ATTACKER_HELD
    if "group" not in split.samples.columns:
        raise MembenchError(f"split {split.id} has no groups (no `group` column), so a groups scorer cannot run on it",
                            "run group scorers on a user-level split (a per-user recipe's finetune/<id>)")
    table = split.samples[["uid", "text", "group"]]
    return table.assign(group=table["group"].astype(str)).reset_index(drop=True), SPLIT_SAMPLES
