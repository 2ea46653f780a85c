"""LOSS (Yeom et al. 2018): the mean log-likelihood of the scored tokens.

score(x) = (1/n) * sum_t l_t, with l_t = log p(x_t | x_<t) over the n scored tokens.
That is minus the usual loss, so that higher = member. NaN when nothing was scored.
"""

import numpy as np

from ..api import Scorer, ScoringInput


def sample_index(stats) -> np.ndarray:
    """The sample each scored token belongs to (one int per token)."""
    return np.repeat(np.arange(len(stats)), stats.n_scored())


def mean_logprob(stats, keep: np.ndarray | None = None) -> np.ndarray:
    """Per sample, the mean of ``logprob`` over its scored tokens (only those with ``keep``
    when given), in float64; NaN where no token counts. Each sample's sum runs over its own
    tokens in order, so a score never depends on the other samples."""
    lp = stats.values["logprob"].astype(np.float64)
    weights = np.ones_like(lp) if keep is None else keep.astype(np.float64)
    index = sample_index(stats)
    sums = np.bincount(index, weights=lp * weights, minlength=len(stats))
    counts = np.bincount(index, weights=weights, minlength=len(stats))
    out = np.full(len(stats), np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


class Loss(Scorer):
    name = "loss"
    title = "LOSS"
    method = "loss"
    citation = "Yeom et al. 2018, CSF 2018 (arXiv 1709.01604)"
    default_set = "features"

    def score(self, inputs: ScoringInput) -> np.ndarray:
        return mean_logprob(inputs.features)
