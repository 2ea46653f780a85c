"""The Infilling score (Raoof et al. 2025, "Infilling Score: A pretraining data detection
algorithm for large language models", ICLR 2025, OpenReview 9QPH1YQCMn).

A non-causal test of each token: is x_{i+1} likelier than the model's own top choice once the
tokens after it are seen? For a text of token ids x_0..x_{T-1}, position i = 0..T-2 predicts
x_{i+1}. With p(.|x_<=i) the target's next-token distribution, mu_i = E_p[log p] and
v_i = E_p[(log p)^2] - mu_i^2 (the variance of log p, as Min-K%++), let o_i = argmax_v p(v|x_<=i)
and x' the text with x_{i+1} replaced by o_i (primed quantities are computed on x'). Then

    r_i = 0                                                     if x_{i+1} = o_i,
    r_i = (l_i(x_{i+1}) - mu_i)/sqrt(v_i) - (l'_i(o_i) - mu'_i)/sqrt(v'_i)
          + sum_{j=i}^{min(i+L, T-3)-1} [ (l_{j+1}(x_{j+2}) - mu_i)/sqrt(v_i) - (l'_{j+1}(x_{j+2}) - mu'_i)/sqrt(v'_i) ]

(l_j(y) = log p(y | tokens 0..j); L = ``future_tokens`` following tokens), and, with r_i
replaced by 0 where it is not finite,

    score(x) = mean of the lowest m = floor(k (T-1)) of the r_i       (k = 0.2; NaN when m = 0),

higher = member: a training text's tokens beat the model's top choice once their future is seen.

Reference implementation: the authors' WikiMIA script (``calculateInfillPerplexity`` with
``token_lens = [0, 1, 3, 5, 10, 20, 30]`` and the Min-K%-style ratios 0.1..1.0, as stored in our
code index; a modular copy is github.com/JaydencoolCC/infilling-score, which corrects two of
the quirks below). Our per-sample scores equal a transcription of that function on a tiny
model (the test). We keep its computation exactly, quirks included, and say so:
the future terms are normalised with position i's mu and v (not j+1's), and v'_i is computed as
E_{p'}[(log p')^2] - mu_i^2 with the original mu_i (at position i itself p' = p, so the first
term is the Min-K%++ z-score of x_{i+1} minus that of o_i). Defaults k = 0.2 and L = 5 are our
choice inside the grid the script reports (the paper's per-benchmark choices could not be read
here). Differences: statistics are fp32 (the script runs the model dtype); v'_i < 0 gives NaN,
then 0, as in the script. Cost: one forward pass for the argmax tokens, then one forward pass
of at most i + L + 2 tokens per position whose token is not the argmax (the rest of x' cannot
change r_i), counted in the record's usage.
"""

from __future__ import annotations

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError


def infill_ratios(lp, mu, var, alt, future: int) -> np.ndarray:
    """r_i for one text of T tokens: ``lp``, ``mu``, ``var`` [T-1] are its statistics per position
    (log p of the next token, E[log p], Var[log p]); ``alt[i]`` is None where x_{i+1} = o_i, else
    (log p', E[log p'], E[(log p')^2]) of x' from position i on."""
    n = len(lp) + 1
    out = np.zeros(n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(n - 1):
            if alt[i] is None:
                continue
            a_lp, a_mu, a_e2 = alt[i]
            sd, alt_sd = np.sqrt(var[i]), np.sqrt(a_e2[0] - mu[i] ** 2)
            r = (lp[i] - mu[i]) / sd - (a_lp[0] - a_mu[0]) / alt_sd
            for j in range(i, min(i + future, n - 3)):
                r += (lp[j + 1] - mu[i]) / sd - (a_lp[j + 1 - i] - a_mu[0]) / alt_sd
            out[i] = r
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class InfillingScore(Scorer):
    name = "infilling"
    title = "Infilling Score"
    method = "infilling"
    citation = "Raoof et al. 2025 (ICLR 2025, OpenReview 9QPH1YQCMn)"
    default_set = "model"
    requires = ("features", "logprobs")

    def __init__(self, k: float = 0.2, future_tokens: int = 5):
        if not 0 < k <= 1:
            raise ValueError(f"k must be in (0, 1], got {k}")
        if future_tokens < 0:
            raise ValueError(f"future_tokens must be >= 0, got {future_tokens}")
        self.k, self.future_tokens = float(k), int(future_tokens)

    def score(self, inputs: ScoringInput) -> np.ndarray:
        access, feats = inputs.access, inputs.features
        # the rows as the target reads them (cut to the context); the text's own statistics are
        # the cached features' first len(row) - 1 positions (the same tokens under either rule)
        rows = [ids for ids in access.tokenize(inputs.texts)]
        for t, ids in enumerate(rows):
            have = feats.sample(t)["token_id"][: max(len(ids) - 1, 0)]
            if list(have) != list(ids[1:]):
                raise MembenchError(f"scorer {self.name}: the cached features of text {t} do not hold the tokens "
                                    "the target's tokenizer gives it", "recompute the features (membench run does)")
        long_enough = [t for t, ids in enumerate(rows) if len(ids) >= 2]
        tops = dict(zip(long_enough, access.argmax_tokens([rows[t] for t in long_enough]) if long_enough else []))
        swaps, alt_rows = {}, []
        for t in long_enough:
            ids, top = rows[t], tops[t]
            swaps[t] = [i for i in range(len(ids) - 1) if top[i] != ids[i + 1]]
            for i in swaps[t]:  # x' up to the last token r_i reads: i + L + 2 tokens at most
                alt_rows.append(ids[: i + 1] + [top[i]] + ids[i + 2 : i + self.future_tokens + 2])
        alt = access.token_logprobs(alt_rows) if alt_rows else None
        out = np.full(len(rows), np.nan)
        a = 0
        for t in long_enough:
            n = len(rows[t]) - 1
            s = feats.sample(t)
            lp, mu, sd = (s[key][:n].astype(np.float64) for key in ("logprob", "mu", "sigma"))
            per = [None] * n
            for i in swaps[t]:
                r = alt.sample(a)
                a += 1
                rl, rm, rs = (r[key][i:].astype(np.float64) for key in ("logprob", "mu", "sigma"))
                per[i] = (rl, rm, rs ** 2 + rm ** 2)
            ratios = infill_ratios(lp, mu, sd ** 2, per, self.future_tokens)
            m = int(len(ratios) * self.k)
            if m >= 1:
                out[t] = float(np.sort(ratios)[:m].mean())
        self.details = {"infill_forward_rows": len(alt_rows), "future_tokens": self.future_tokens}
        return out
