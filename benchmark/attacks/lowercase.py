"""Lowercase (Carlini et al. 2021): how much likelier the text is than its lowercased form.

score(x) = mean_t l_t(x) - mean_t l_t(lower(x)), each mean over that text's own scored
tokens on the target (lower = Python ``str.lower``). A memorized text loses more likelihood
when its casing changes, so higher = member. Needs ``logprobs`` (one extra forward pass over
the lowercased texts); NaN when either form has no scored token.
"""

import numpy as np

from ..api import Scorer, ScoringInput
from .loss import mean_logprob


class Lowercase(Scorer):
    name = "lowercase"
    title = "Lowercase"
    method = "lowercase"
    citation = "Carlini et al. 2021, USENIX Security 2021 (arXiv 2012.07805)"
    default_set = "model"
    requires = ("features", "logprobs")

    def score(self, inputs: ScoringInput) -> np.ndarray:
        lowered = inputs.access.logprobs([t.lower() for t in inputs.texts])
        return mean_logprob(inputs.features) - mean_logprob(lowered)
