"""Min-K% Prob (Shi et al. 2023, "Detecting pretraining data from large language models",
arXiv 2310.16789, ICLR 2024) and Min-K%++ (Zhang et al. 2024, arXiv 2404.02936).

Min-K% Prob: the mean of the lowest floor(k * n) values of l_t (at least one), k = 0.2.

Min-K%++: z_t = (l_t - mu_t) / sigma_t, with mu_t = E_{v~p(.|x_<t)}[log p(v)] and
sigma_t^2 = E_{v~p}[(log p(v) - mu_t)^2] (computed two-pass in fp32 by the feature pass);
the score is the mean of the lowest floor(k * n) z_t
(at least one). A position with sigma_t = 0 (a one-hot distribution) contributes z_t = 0.
"""

import numpy as np

from ..api import Scorer, ScoringInput


def lowest_mean(values: np.ndarray, k: float) -> float:
    n = max(int(np.floor(k * len(values))), 1)
    return float(np.mean(np.sort(values.astype(np.float64))[:n]))


def _check_k(k: float) -> float:
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    return float(k)


class MinK(Scorer):
    name = "min_k"
    title = "Min-K% Prob"
    method = "min_k"
    citation = "Shi et al. 2023, ICLR 2024 (arXiv 2310.16789)"
    default_set = "features"

    def __init__(self, k: float = 0.2):
        self.k = _check_k(k)

    def score(self, inputs: ScoringInput) -> np.ndarray:
        return self.per_sample(inputs, lambda s, _: lowest_mean(s["logprob"], self.k))


class MinKPlusPlus(Scorer):
    name = "min_k_plus_plus"
    title = "Min-K%++"
    method = "min_k_plus_plus"
    citation = "Zhang et al. 2024, ICLR 2025 (arXiv 2404.02936)"
    default_set = "features"

    def __init__(self, k: float = 0.2):
        self.k = _check_k(k)

    def score(self, inputs: ScoringInput) -> np.ndarray:
        def z(s, _):
            lp, mu, sd = (s[k].astype(np.float64) for k in ("logprob", "mu", "sigma"))
            zt = np.divide(lp - mu, sd, out=np.zeros_like(lp), where=sd > 0)
            return lowest_mean(zt, self.k)

        return self.per_sample(inputs, z)
