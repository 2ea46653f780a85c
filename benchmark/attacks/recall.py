"""ReCaLL (Xie et al. 2024): relative change in likelihood under a non-member prefix.

score(x) = LL(x | P) / LL(x), where LL(x) = mean_t l_t over the scored tokens of x and
LL(x | P) is the mean over the same tokens of x when x follows the prefix P in the context.
P is the concatenation (blank-line separated) of ``shots`` texts drawn with a fixed ``seed``
from the declared non-member pool, which must be disjoint from the evaluated texts; when
P + x exceeds the context, P is cut from its left end. Both LLs are negative; a non-member
prefix lowers a member's likelihood relatively more, so a larger ratio = member.
NaN when x has no scored token.
"""

import numpy as np

from ..api import Scorer, ScoringInput
from .loss import mean_logprob
from .pool import checked_pool


class ReCaLL(Scorer):
    name = "recall"
    title = "ReCaLL"
    method = "recall"
    citation = "Xie et al. 2024, EMNLP 2024 (arXiv 2406.15968)"
    default_set = "model"
    requires = ("features", "logprobs")
    needs_pool = True

    def __init__(self, shots: int = 2, seed: int = 0):
        if shots < 1:
            raise ValueError(f"shots must be at least 1, got {shots}")
        self.shots = int(shots)
        self.seed = int(seed)

    def prefix(self, pool: list[str]) -> str:
        rng = np.random.default_rng(self.seed)
        picks = rng.choice(len(pool), size=min(self.shots, len(pool)), replace=False)
        return "\n\n".join(pool[int(i)] for i in picks) + "\n\n"

    def score(self, inputs: ScoringInput) -> np.ndarray:
        prefix = self.prefix(checked_pool(inputs, self.name))
        self.details = {"prefix_chars": len(prefix)}
        conditional = mean_logprob(inputs.access.conditional_logprobs(prefix, inputs.texts))
        alone = mean_logprob(inputs.features)
        return conditional / alone
