"""User inference (Kandpal et al., 2023, "User Inference Attacks on Large Language Models").

Threat model: the attacker holds a few samples of a user (here the split's attacker-held
samples, ``attacker.parquet``: per user, texts of that user that were never trained on) and
asks whether the user's data was used to fine-tune the target. The statistic, for user u with
attacker-held samples x_1..x_m:

    T(u) = (1/m) * sum_i [ log p_target(x_i) - log p_reference(x_i) ]

where log p(x) is the sum of the log-probabilities of the text's scored tokens (every token
after the first input token, as all membench statistics; the target's cached pass over the
rows and the reference's pass over the same texts). Higher T(u) = the target fits the user's
distribution better than the reference does = the user is more likely a member.

The reference is the target's base model by default (``membench run`` passes a fine-tuned
target's base as ``--reference`` when none is given; the paper's default, the pre-trained model
before fine-tuning), declared in the record's ``provenance.reference`` and swappable with
``--reference``.

Choices and differences from the paper:
- samples are the attacker-held texts of the split's users (``attacker_per_user`` of the
  recipe, 2 in the demo; the paper varies m from 1 to dozens), never the user's trained texts;
  the harness picks the rows (``benchmark.grouping``), the scorer only sees them;
- log p(x) is a sum over tokens, as in the paper's likelihood ratio (``per_token=true`` uses
  the mean token log-probability instead, which weighs long and short texts alike);
- a text with no scored token (under two tokens) is left out of its user's mean; a user with no
  scorable text has no score, which fails the run (a group score must be finite);
- texts longer than the context are cut as every membench pass cuts them (the first
  ``max_length`` tokens), where the paper uses fixed-length chunks of its corpora.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..api import Scorer


def per_text_loglik(stats, per_token: bool = False) -> np.ndarray:
    """log p(x) (sum of scored-token log-probabilities; mean with ``per_token``) per text;
    NaN where a text has no scored token."""
    out = np.full(len(stats), np.nan)
    for i in range(len(stats)):
        lp = stats.sample(i)["logprob"]
        if len(lp):
            out[i] = float(np.mean(lp) if per_token else np.sum(lp, dtype=np.float64))
    return out


def group_means(values: np.ndarray, groups: list[str], group_ids: list[str]) -> np.ndarray:
    """Mean of the finite ``values`` of each group, aligned with ``group_ids`` (NaN: none)."""
    frame = pd.DataFrame({"g": groups, "v": values})
    means = frame[np.isfinite(frame["v"])].groupby("g")["v"].mean()
    return means.reindex(group_ids).to_numpy(float)


class UserInference(Scorer):
    name = "user_inference"
    title = "User inference"
    method = "user_inference"
    citation = "Kandpal et al. 2023 (arXiv 2310.09266)"
    default_set = "groups"
    version = "1"
    requires = ("features", "reference", "groups")

    def __init__(self, per_token: bool = False):
        self.per_token = per_token
        self.details = {}

    def score(self, inputs):
        target = per_text_loglik(inputs.features, self.per_token)
        reference = per_text_loglik(inputs.access.reference(list(inputs.texts)), self.per_token)
        ratio = target - reference
        ids = inputs.group_ids
        self.details = {"statistic": "mean over a user's attacker-held texts of log p_target(x) - log p_reference(x)",
                        "log_p": "mean token log-probability" if self.per_token else "sum of token log-probabilities",
                        "texts_scored": int(np.isfinite(ratio).sum()), "users": len(ids)}
        return group_means(ratio, list(inputs.groups), ids)
