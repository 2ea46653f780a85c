import numpy as np

from benchmark.api import Scorer


class MinK30(Scorer):
    name = "min_k_30"
    requires = ("features",)

    def __init__(self, k=0.3):
        self.k = k

    def score(self, inputs):
        out = np.full(len(inputs.uids), np.nan)
        for i in range(len(inputs.uids)):
            lp = np.sort(inputs.features.sample(i)["logprob"].astype(float))
            if len(lp):
                out[i] = lp[: max(1, int(self.k * len(lp)))].mean()
        return out
