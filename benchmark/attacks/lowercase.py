"""Lowercase (Carlini et al. 2021): how much likelier the text is than its lowercased form.

score(x) = mean_t l_t(x) - mean_t l_t(lower(x)), each mean over that text's own scored
tokens on the target (lower = Python ``str.lower``). A memorized text loses more likelihood
when its casing changes, so higher = member. Needs ``logprobs`` (one extra forward pass over
the lowercased texts); NaN when either form has no scored token.
"""

import numpy as np

from .base import Scorer, ScoringInput, register
from .loss import mean_logprob


@register
class Lowercase(Scorer):
    name = "lowercase"
    requires = ("features", "logprobs")

    def score(self, inputs: ScoringInput) -> np.ndarray:
        lowered = inputs.access.logprobs([t.lower() for t in inputs.texts])
        return mean_logprob(inputs.features) - mean_logprob(lowered)
