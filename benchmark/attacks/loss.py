"""LOSS (Yeom et al. 2018): the mean log-likelihood of the scored tokens.

score(x) = (1/n) * sum_t l_t, with l_t = log p(x_t | x_<t) over the n scored tokens.
That is minus the usual loss, so that higher = member.
"""

import numpy as np

from .base import Scorer, ScoringInput, register


@register
class Loss(Scorer):
    name = "loss"

    def score(self, inputs: ScoringInput) -> np.ndarray:
        return self.per_sample(inputs, lambda s, _: float(np.mean(s["logprob"], dtype=np.float64)))
