"""ReCaLL (Xie et al. 2024, arXiv 2406.15968): relative change in likelihood under a non-member
prefix. Reference implementations: github.com/ruoyuxie/recall and MIMIR's ``mimir/attacks/recall.py``.

score(x) = LL(x | P) / LL(x), where LL(x) = mean_t l_t over the scored tokens of x and
LL(x | P) is the mean over the same tokens of x when x follows the prefix P in the context.
P is the concatenation (blank-line separated) of ``shots`` texts drawn with a fixed ``seed``
from the declared non-member pool, which must be disjoint from the evaluated texts; when
P + x exceeds the context, P is cut from its left end. Both LLs are negative; a non-member
prefix lowers a member's likelihood relatively more, so a larger ratio = member.
NaN when x has no scored token.

``shots`` defaults to 1, MIMIR's setting (``configs/recall.json``: ``recall_num_shots: 1``; the
ReCaLL paper sweeps 1 to 12 shots). Differences from MIMIR: its shots are the split's own last
non-member rows (removed from evaluation), membench's are drawn from the declared pool; MIMIR
joins several shots with nothing between them and drops whole shots that overflow the context,
membench separates them with a blank line and cuts the prefix's left end.
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

    def __init__(self, shots: int = 1, seed: int = 0):
        if shots < 1:
            raise ValueError(f"shots must be at least 1, got {shots}")
        self.shots = int(shots)
        self.seed = int(seed)

    @classmethod
    def method_details(cls, details: dict, params: dict) -> dict[str, str]:
        if "prefix_chars" not in details:
            return {}
        shots = params.get("shots", 1)
        return {"prefix": f"{shots} non-member text{'s' if shots != 1 else ''} of the declared pool "
                          f"({details['prefix_chars']:,} characters)" + (" (MIMIR: 1)" if shots != 1 else "")}

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
