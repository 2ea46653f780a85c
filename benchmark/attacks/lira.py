"""LiRA, the likelihood-ratio attack with shadow models (Carlini et al., IEEE S&P 2022,
"Membership Inference Attacks From First Principles", arXiv 2112.03570), on fine-tuned targets.

Shadows (``ModelAccess.shadow_stats``): ``n_shadows`` fine-tunes of the target's base with the
target's own recipe, shadow k on its half of the evaluated texts, every text in exactly half of
the shadows (the authors' keep matrix, ``train.py``: ``keep = uniform(n, N).argsort(0) < n/2``).
The attacker knows the candidate texts (not their labels), so training on them is within the
threat model of the online attack; the shadows are cached targets (built once).

Statistic, per text x and model M (the LLM form of the authors' logit-scaled confidence):

    p_M(x)   = exp( (1/n) sum_t l_t^M(x) )    (Privacy Meter's sequence probability for LLMs:
                                              exp of the mean token log-probability)
    phi_M(x) = log( p_M(x) / (1 - p_M(x)) )

For each text, its IN shadows' phi values (shadows that trained on it) and its OUT shadows'.
mu_in(x), mu_out(x) = the median of those values (as the authors' ``plot.py``); sigma:

- ``global_variance=true`` (default; the authors' ``fix_variance``, which they recommend for
  few shadows): one standard deviation over all IN values of all texts (online: used for both
  IN and OUT, exactly as their ``generate_ours``), over all OUT values (offline);
- ``global_variance=false``: each text's own standard deviation of its IN (OUT) values.

Score, higher = member:

- online (default): log N(phi_target(x); mu_in, sigma_in^2) - log N(phi_target(x); mu_out,
  sigma_out^2) (the authors' ``generate_ours``, negated from their lower-is-member convention);
- offline (``online=false``, OUT shadows only): (phi_target(x) - mu_out(x)) / sigma_out(x), the
  z-score of the paper's one-sided test Lambda = Pr[Z < phi_target(x)], Z ~ N(mu_out, sigma_out^2)
  (Algorithm 1), of which it is a monotone transform (the same ROC, without Lambda's saturation
  at 1 that would tie the strongest members). The authors' ``generate_ours_offline`` scores
  -log N(phi; mu_out, sigma_out^2) instead, two-sided: a text far *below* the OUT mean counts as
  a member there, not here.

Differences from the paper: one query per text (no augmentations: text has no analogue of image
flips); ``n_shadows`` 8 by default where the paper uses 64-256 (each shadow here is a full
fine-tune); the statistic is of the whole text (mean token log-probability), as Privacy Meter
does for LLMs. Texts with no scored token score NaN. ``details`` records the shadows, their IN/OUT
counts and their training cost (also in ``provenance.usage``).
"""

from __future__ import annotations

import time

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError
from .loss import mean_logprob


def logit_confidence(mean_lp: np.ndarray) -> np.ndarray:
    """phi = log(p / (1 - p)) for p = exp(mean token log-probability), computed stably
    (log p - log(1 - p), with log(1 - p) = log(-expm1(log p)))."""
    m = np.asarray(mean_lp, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return m - np.log(-np.expm1(m))


def _norm_logpdf(x, mu, sigma):
    return -0.5 * np.log(2 * np.pi) - np.log(sigma) - 0.5 * ((x - mu) / sigma) ** 2


def lira_scores(target_phi: np.ndarray, shadow_phi: np.ndarray, keep: np.ndarray, *, online: bool = True,
                global_variance: bool = True) -> np.ndarray:
    """LiRA scores (higher = member) of texts with target statistic ``target_phi`` (n,), from
    shadow statistics ``shadow_phi`` (k, n) and the keep matrix ``keep`` (k, n). See the module
    docstring; ``1e-30`` is added to every sigma as in the authors' code."""
    target_phi = np.asarray(target_phi, dtype=np.float64)
    shadow_phi = np.asarray(shadow_phi, dtype=np.float64)
    keep = np.asarray(keep, dtype=bool)
    n = target_phi.shape[0]
    ins = [shadow_phi[keep[:, j], j] for j in range(n)]
    outs = [shadow_phi[~keep[:, j], j] for j in range(n)]
    if any(len(v) == 0 for v in outs) or (online and any(len(v) == 0 for v in ins)):
        raise MembenchError("LiRA needs every text to have OUT shadows (and, online, IN shadows)",
                            "use an even n_shadows >= 2 (every text is in exactly half of them)")
    with np.errstate(all="ignore"):
        mu_out = np.array([np.median(v) for v in outs])
        if global_variance:
            all_in = np.concatenate(ins) if online else None
            sigma_out = np.full(n, np.std(all_in if online else np.concatenate(outs)))
        else:
            sigma_out = np.array([np.std(v) for v in outs])
        if not online:
            return (target_phi - mu_out) / (sigma_out + 1e-30)
        mu_in = np.array([np.median(v) for v in ins])
        sigma_in = np.full(n, np.std(all_in)) if global_variance else np.array([np.std(v) for v in ins])
        return _norm_logpdf(target_phi, mu_in, sigma_in + 1e-30) - _norm_logpdf(target_phi, mu_out, sigma_out + 1e-30)


class LiRA(Scorer):
    name = "lira"
    title = "LiRA"
    method = "lira"
    citation = "Carlini et al. 2022 (arXiv 2112.03570)"
    default_set = "finetune"  # attacks on fine-tuned targets (it trains shadow fine-tunes: name it to run it)
    version = "1"
    requires = ("features", "reference")

    def __init__(self, n_shadows: int = 8, online: bool = True, global_variance: bool = True, seed: int = 0):
        if n_shadows < 2 or n_shadows % 2:
            raise ValueError(f"n_shadows must be an even number >= 2, got {n_shadows}")
        self.n_shadows = int(n_shadows)
        self.online = bool(online)
        self.global_variance = bool(global_variance)
        self.seed = int(seed)
        self.details = {}

    def score(self, inputs: ScoringInput) -> np.ndarray:
        started = time.perf_counter()
        texts = list(inputs.texts)
        stats, keep = inputs.access.shadow_stats(texts, texts, self.n_shadows, seed=self.seed)
        shadow_phi = np.stack([logit_confidence(mean_logprob(s)) for s in stats])
        out = lira_scores(logit_confidence(mean_logprob(inputs.features)), shadow_phi, keep, online=self.online,
                          global_variance=self.global_variance)
        usage = getattr(inputs.access, "usage", {})
        self.details = {
            "variant": "online" if self.online else "offline",
            "statistic": "logit of exp(mean token log-probability)",
            "shadows": list(getattr(inputs.access, "shadow_targets", [])),
            "in_shadows_per_text": [int(keep.sum(0).min()), int(keep.sum(0).max())] if keep.size else None,
            "out_shadows_per_text": [int((~keep).sum(0).min()), int((~keep).sum(0).max())] if keep.size else None,
            "cost": {key: usage.get(key) for key in ("shadows_built", "shadows_reused", "shadow_training_steps",
                                                       "shadow_training_tokens", "shadow_training_seconds",
                                                       "shadow_forward_tokens")}
                    | {"wall_seconds": round(time.perf_counter() - started, 3)},
        }
        return out
