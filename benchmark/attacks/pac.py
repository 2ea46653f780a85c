"""PAC, Polarized Augment Calibration (Ye et al. 2024, "Data contamination calibration for
black-box LLMs", ACL Findings 2024, arXiv 2405.11930).

Polarized distance of a text's per-token log-probabilities l_1..l_n (the scored tokens):

    PD(x) = mean(the largest max(floor(0.05 n), 1) l_t) - mean(the smallest max(floor(0.3 n), 1) l_t)

(``ratio_far`` = 0.05, ``ratio_local`` = 0.3). PD is calibrated on N = 5 augmented neighbours
a_1..a_N of x, made by EDA random swap (Wei & Zou 2019) as in the authors' ``src/eda.py``: the
text is split on single spaces into w words, and each neighbour applies n_rs = max(1,
floor(alpha w)) swaps (alpha = 0.3) of two random positions (a draw that keeps hitting the
same position gives up that swap after 4 tries), then the N neighbours are shuffled. The authors
report PAC(x) = PD(x) - mean_j PD(a_j) and rank with -PAC (their ``calculate_auc``), so

    score(x) = mean_j PD(a_j) - PD(x),                              higher = member.

Reference implementation: github.com/yyy01/PAC (``attack.py``, ``src/eda.py``, ``src/prob.py``);
the test transcribes it. Differences: the authors draw every text's swaps from one
``random.seed(0)`` stream in dataset order, so a text's neighbours depend on the texts before
it; here each text has its own ``random.Random`` seeded from (``seed``, the text's SHA-256), the
same calls in the same order, so a score does not move with the batch or the split's order.
Log-probabilities are fp32 log-softmax under the target's context rule (the authors' script
feeds each text whole). Needs ``logprobs``: one extra forward pass over the N neighbours.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

from ..api import Scorer, ScoringInput


def swap_word(words: list[str], rng: random.Random) -> list[str]:
    i = rng.randint(0, len(words) - 1)
    j, tries = i, 0
    while j == i:
        j = rng.randint(0, len(words) - 1)
        tries += 1
        if tries > 3:
            return words
    words[i], words[j] = words[j], words[i]
    return words


def eda_swaps(text: str, rng: random.Random, alpha: float, n_aug: int) -> list[str]:
    """The authors' ``eda(sentence, alpha, num_aug)`` (random swap only) with ``rng``."""
    words = text.split(" ")
    n_rs = max(1, int(alpha * len(words)))
    out = []
    for _ in range(n_aug):
        new = words.copy()
        for _ in range(n_rs):
            new = swap_word(new, rng)
        out.append(" ".join(new))
    rng.shuffle(out)
    return out[:n_aug]


def polarized_distance(logprob, ratio_local: float, ratio_far: float) -> float:
    lp = np.sort(np.asarray(logprob, dtype=np.float64))
    local = max(int(len(lp) * ratio_local), 1)
    far = max(int(len(lp) * ratio_far), 1)
    return float(lp[::-1][:far].mean() - lp[:local].mean())


def text_rng(seed: int, text: str) -> random.Random:
    digest = hashlib.sha256(f"{int(seed)}\0{text}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class PAC(Scorer):
    name = "pac"
    title = "PAC"
    method = "pac"
    citation = "Ye et al. 2024 (arXiv 2405.11930)"
    default_set = "model"
    requires = ("features", "logprobs")

    def __init__(self, alpha: float = 0.3, n_aug: int = 5, ratio_local: float = 0.3, ratio_far: float = 0.05,
                 seed: int = 0):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if n_aug < 1:
            raise ValueError(f"n_aug must be at least 1, got {n_aug}")
        if not (0 < ratio_local <= 1 and 0 < ratio_far <= 1):
            raise ValueError("ratio_local and ratio_far must be in (0, 1]")
        self.alpha, self.n_aug = float(alpha), int(n_aug)
        self.ratio_local, self.ratio_far = float(ratio_local), float(ratio_far)
        self.seed = int(seed)

    def neighbours(self, text: str) -> list[str]:
        return eda_swaps(text, text_rng(self.seed, text), self.alpha, self.n_aug)

    def score(self, inputs: ScoringInput) -> np.ndarray:
        augmented = [a for text in inputs.texts for a in self.neighbours(text)]
        aug = inputs.access.logprobs(augmented)
        feats = inputs.features
        out = np.full(len(inputs.texts), np.nan)
        for i in range(len(inputs.texts)):
            own = feats.sample(i)["logprob"]
            neigh = [aug.sample(i * self.n_aug + j)["logprob"] for j in range(self.n_aug)]
            if len(own) and all(len(n) for n in neigh):
                pd_aug = np.mean([polarized_distance(n, self.ratio_local, self.ratio_far) for n in neigh])
                out[i] = pd_aug - polarized_distance(own, self.ratio_local, self.ratio_far)
        self.details = {"augmentation": "EDA random swap (yyy01/PAC src/eda.py)", "neighbours_per_text": self.n_aug}
        return out
