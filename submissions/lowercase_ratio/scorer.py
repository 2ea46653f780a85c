"""Lowercase ratio (Carlini et al. 2021), through the metered ``logprobs`` capability.

score(x) = mean l(x) - mean l(lower(x)): a member's exact casing is likelier under the target
than the lowercased text; higher = member. l(x) comes from the cached features, l(lower(x))
from one extra forward pass over the lowercased texts.
"""

import numpy as np

from benchmark.api import Scorer


class LowercaseRatio(Scorer):
    name = "lowercase_ratio"
    requires = ("features", "logprobs")

    def score(self, inputs):
        lowered = inputs.access.logprobs([t.lower() for t in inputs.texts])
        out = np.full(len(inputs.uids), np.nan)
        for i in range(len(inputs.uids)):
            own, low = inputs.features.sample(i)["logprob"], lowered.sample(i)["logprob"]
            if len(own) and len(low):
                out[i] = float(np.mean(own, dtype=np.float64) - np.mean(low, dtype=np.float64))
        return out
