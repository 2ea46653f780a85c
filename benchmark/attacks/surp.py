"""SURP (Zhang & Wu 2024, "Adaptive pre-training data detection for large language models via
surprising tokens", arXiv 2407.21248): the likelihood of the tokens that surprise the model.

A scored token t is *surprising* when the model is certain but wrong there: its entropy is low,
H_t < ``max_entropy`` (nats, H_t = -sum_v p(v) log p(v) = -mu_t of the cached features), and the
true token's log-probability l_t is among the lowest m = floor(k * n) of the text's n scored
tokens (ties broken by position). With S the surprising tokens,

    score(x) = (1/|S|) sum_{t in S} l_t,                          higher = member,

since "seeing seen data is less surprising for the model" (the paper's hypothesis). A text with
no surprising token (S empty, also when m = 0) has nothing that surprised the model and scores
``empty_score`` = 0 (log 1, the top of the scale).

Defaults k = 0.2 and max_entropy = 2.0 are those of the public implementation we could read,
computationalprivacy/mia_llms_benchmark ``attacks/surp.py`` (``k=20`` percent, ``max_entropy=2.0``;
not the authors' code, which we did not find); the test transcribes that file's computation.
Differences from it: the empty case, which it maps to -100 (its NaN filler): that ranks the texts
the model is never wrong about as the least member-like, against the hypothesis, and on the demo
target, which knows its members, 156 of 195 members have no surprising token (75 of 195
non-members): AUC 0.33 with -100, 0.75 with 0 (``empty_score=-100`` gives its behaviour). Otherwise
none in the formula; l_t and H_t come from fp32 log-softmax (the cached
statistics) and ties among equal l_t go to the earlier token (``torch.topk`` leaves them
unspecified). Run on a right-padded batch, that implementation also scores the first padding
position of every row shorter than the batch (it shifts the attention mask the wrong way), so
its score of a text moves with the batch; membench scores a text's own tokens only, which is
what it computes for a text alone. The paper's own hyperparameter choices could not be checked. Needs only the cached
features.
"""

from __future__ import annotations

import numpy as np

from ..api import Scorer, ScoringInput

REFERENCE_EMPTY = -100.0  # the reference implementation's score of a text with no surprising token


def surp_score(logprob: np.ndarray, entropy: np.ndarray, k: float, max_entropy: float, empty: float = 0.0) -> float:
    lp = np.asarray(logprob, dtype=np.float64)
    m = int(k * len(lp))
    if m < 1:
        return empty
    lowest = np.argsort(lp, kind="stable")[:m]
    chosen = lowest[np.asarray(entropy, dtype=np.float64)[lowest] < max_entropy]
    return float(lp[chosen].mean()) if len(chosen) else empty


class SURP(Scorer):
    name = "surp"
    title = "SURP"
    method = "surp"
    citation = "Zhang & Wu 2024 (arXiv 2407.21248)"
    default_set = "features"
    requires = ("features",)

    def __init__(self, k: float = 0.2, max_entropy: float = 2.0, empty_score: float = 0.0):
        if not 0 < k <= 1:
            raise ValueError(f"k must be in (0, 1], got {k}")
        if not max_entropy > 0:
            raise ValueError(f"max_entropy must be positive, got {max_entropy}")
        self.k = float(k)
        self.max_entropy = float(max_entropy)
        self.empty_score = float(empty_score)

    def score(self, inputs: ScoringInput) -> np.ndarray:
        counts = []

        def one(s, _):
            lp, h = s["logprob"], s["entropy"]
            m = int(self.k * len(lp))
            counts.append(int(np.sum(np.asarray(h)[np.argsort(lp, kind="stable")[:m]] < self.max_entropy)) if m else 0)
            return surp_score(lp, h, self.k, self.max_entropy, self.empty_score)

        out = self.per_sample(inputs, one)
        self.details = {"texts_without_surprising_tokens": int(sum(c == 0 for c in counts))}
        return out
