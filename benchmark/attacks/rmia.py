"""RMIA, the relative membership inference attack (Zarifzadeh et al., ICML 2024, "Low-Cost
High-Power Membership Inference Attacks", arXiv 2312.03262), as Privacy Meter implements it
(privacytrustlab/ml_privacy_meter, ``run_rmia``), on fine-tuned targets.

Shadows (reference models) are those of LiRA (``ModelAccess.shadow_stats``): the target's recipe
fine-tuned on halves of the evaluated texts, every text in exactly half of them. The population
Z is the run's declared pool (``ScoringInput.pool``: for a fine-tuned split its ``pool.parquet``,
texts of the same pool that no model trained on), at most ``max_population`` texts (a seeded
sample when there are more).

Signal, per text and model M: p_M(x) = exp((1/n) sum_t l_t^M(x)), the sequence probability
Privacy Meter uses for LLMs (exp of the mean token log-probability).

    p(x)     offline (default): (1 + a)/2 * mean over x's OUT shadows of p_shadow(x) + (1 - a)/2
             online (``online=true``): mean over all shadows (IN and OUT) of p_shadow(x)
    p(z)     the same over all shadows (every population text is OUT for every shadow)
    LR(x, z) = (p_target(x) / p(x)) / (p_target(z) / p(z))
    score(x) = fraction of z in Z with LR(x, z) > gamma          (higher = member)

with gamma = ``gamma`` (1, as Privacy Meter) and a = ``offline_a``. By default (``offline_a``
unset) a is tuned as Privacy Meter's ``MIA.run_mia`` does when its config gives none
(``tune_offline_a``): shadow 0 is attacked as a "paired" model of known membership, with the
other shadows as its references, for a = 0, 0.1, ..., 1, and the a of the highest AUC (the first
on ties) is used; with a given ``offline_a`` nothing is tuned. The tuning matters for language
models: a sequence probability is far below 1 (exp of a mean log-probability of -5 is 0.007), so
with a fixed a = 0.3 (Privacy Meter's fallback) the constant (1 - a)/2 dominates p(x) and RMIA
orders texts as LOSS does.

Differences from Privacy Meter's code: for the population it averages p_shadow(z) over all
shadows, where its ``get_rmia_out_signals`` keeps the larger half of them (it sorts the OUT
signals in descending order and keeps as many as a text has OUT models); for the evaluated texts
the two agree (each text is OUT in exactly half of the shadows, and those are all kept). Its
tuning uses one reference per text (converting an IN reference's signal to an OUT estimate) and
the target's population signals; ours uses the paired shadow's own population signals and every
OUT reference among the other shadows (so tuning needs ``n_shadows`` >= 4). One query per text;
no augmentations. NaN for a text with no scored token. ``details`` records the shadows, the
population size, a (and the paired AUC of each candidate a when tuned) and the cost.
"""

from __future__ import annotations

import time

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError
from .pool import checked_pool
from .loss import mean_logprob


def rmia_scores(p_target_x: np.ndarray, p_shadow_x: np.ndarray, keep_x: np.ndarray, p_target_z: np.ndarray,
                p_shadow_z: np.ndarray, *, offline_a: float = 0.3, gamma: float = 1.0,
                online: bool = False) -> np.ndarray:
    """RMIA scores of texts x (see the module docstring). ``p_shadow_x`` (k, n) and ``keep_x``
    (k, n): shadow signals and memberships of the texts; ``p_shadow_z`` (k, m): shadow signals of
    the population (all OUT)."""
    p_target_x = np.asarray(p_target_x, dtype=np.float64)
    p_shadow_x = np.asarray(p_shadow_x, dtype=np.float64)
    keep_x = np.asarray(keep_x, dtype=bool)
    p_target_z = np.asarray(p_target_z, dtype=np.float64)
    p_shadow_z = np.asarray(p_shadow_z, dtype=np.float64)
    if online:
        mean_x = p_shadow_x.mean(axis=0)
        mean_z = p_shadow_z.mean(axis=0)
    else:
        out = ~keep_x
        if (out.sum(axis=0) == 0).any():
            raise MembenchError("offline RMIA needs OUT shadows for every text", "use an even n_shadows >= 2")
        mean_out_x = (p_shadow_x * out).sum(axis=0) / out.sum(axis=0)
        mean_x = (1 + offline_a) / 2 * mean_out_x + (1 - offline_a) / 2
        mean_z = (1 + offline_a) / 2 * p_shadow_z.mean(axis=0) + (1 - offline_a) / 2
    with np.errstate(all="ignore"):
        ratio_x = p_target_x / mean_x
        ratio_z = p_target_z / mean_z
        ratio_z = ratio_z[np.isfinite(ratio_z)]
        if ratio_z.size == 0:
            raise MembenchError("RMIA has no usable population text (none was scored)", "declare a larger pool")
        scores = (ratio_x[:, None] / ratio_z[None, :] > gamma).mean(axis=1)
    scores[~np.isfinite(ratio_x)] = np.nan
    return scores


def tune_offline_a(p_shadow_x: np.ndarray, keep_x: np.ndarray, p_shadow_z: np.ndarray, *, gamma: float = 1.0,
                   grid=tuple(round(0.1 * i, 1) for i in range(11))) -> tuple[float, dict]:
    """(a, {a: AUC}): RMIA run on shadow 0 (the paired model, membership ``keep_x[0]``) with the
    other shadows as references, for each a of ``grid``; the a of the highest AUC, the first on
    ties (Privacy Meter's ``tune_offline_a``, with the differences the module docstring names)."""
    from sklearn.metrics import roc_auc_score

    keep_x = np.asarray(keep_x, dtype=bool)
    if keep_x.shape[0] < 4:
        raise MembenchError("tuning RMIA's offline_a attacks one shadow with the others: it needs n_shadows >= 4",
                            "use n_shadows=4 or more, or give offline_a")
    labels = keep_x[0].astype(int)
    aucs, best, best_auc = {}, 0.0, -1.0
    for a in grid:
        scores = rmia_scores(p_shadow_x[0], p_shadow_x[1:], keep_x[1:], p_shadow_z[0], p_shadow_z[1:],
                             offline_a=a, gamma=gamma)
        ok = np.isfinite(scores)
        auc = float(roc_auc_score(labels[ok], scores[ok]))
        aucs[str(a)] = round(auc, 6)
        if auc > best_auc:
            best, best_auc = float(a), auc
    return best, aucs


def sequence_probability(stats) -> np.ndarray:
    """p(x) = exp(mean token log-probability), per text (NaN with no scored token)."""
    return np.exp(mean_logprob(stats))


class RMIA(Scorer):
    name = "rmia"
    title = "RMIA"
    method = "rmia"
    citation = "Zarifzadeh et al. 2024 (arXiv 2312.03262)"
    default_set = "finetune"  # attacks on fine-tuned targets (it trains shadow fine-tunes: name it to run it)
    version = "1"
    requires = ("features", "logprobs", "reference")
    needs_pool = True

    def __init__(self, n_shadows: int = 8, online: bool = False, offline_a: float | None = None, gamma: float = 1.0,
                 max_population: int = 1000, seed: int = 0):
        if n_shadows < 2 or n_shadows % 2:
            raise ValueError(f"n_shadows must be an even number >= 2, got {n_shadows}")
        if offline_a is not None and not 0 <= offline_a <= 1:
            raise ValueError(f"offline_a must be in [0, 1], got {offline_a}")
        if gamma <= 0 or max_population < 1:
            raise ValueError("gamma must be > 0 and max_population >= 1")
        self.n_shadows = int(n_shadows)
        self.online = bool(online)
        self.offline_a = None if offline_a is None else float(offline_a)
        self.gamma = float(gamma)
        self.max_population = int(max_population)
        self.seed = int(seed)
        self.details = {}

    def population(self, inputs: ScoringInput) -> list[str]:
        pool = checked_pool(inputs, self.name, minimum=2)
        if len(pool) > self.max_population:
            idx = np.random.default_rng([self.seed, 17]).choice(len(pool), self.max_population, replace=False)
            pool = [pool[i] for i in sorted(idx)]
        return pool

    def score(self, inputs: ScoringInput) -> np.ndarray:
        started = time.perf_counter()
        texts = list(inputs.texts)
        population = self.population(inputs)
        access = inputs.access
        stats_x, keep = access.shadow_stats(texts, texts, self.n_shadows, seed=self.seed)
        stats_z, _ = access.shadow_stats(texts, population, self.n_shadows, seed=self.seed)
        p_target_z = sequence_probability(access.logprobs(population))
        p_shadow_x = np.stack([sequence_probability(s) for s in stats_x])
        p_shadow_z = np.stack([sequence_probability(s) for s in stats_z])
        a, tuning = self.offline_a, None
        if a is None and not self.online:
            a, tuning = tune_offline_a(p_shadow_x, keep, p_shadow_z, gamma=self.gamma)
        out = rmia_scores(sequence_probability(inputs.features), p_shadow_x, keep, p_target_z, p_shadow_z,
                          offline_a=0.0 if a is None else a, gamma=self.gamma, online=self.online)
        usage = getattr(access, "usage", {})
        self.details = {
            "variant": "online" if self.online else "offline",
            "signal": "exp(mean token log-probability)",
            "shadows": list(getattr(access, "shadow_targets", [])),
            "population": len(population),
            "offline_a": None if self.online else a,
            "offline_a_tuning": tuning,
            "cost": {key: usage.get(key) for key in ("shadows_built", "shadows_reused", "shadow_training_steps",
                                                       "shadow_training_tokens", "shadow_training_seconds",
                                                       "shadow_forward_tokens", "target_forward_tokens")}
                    | {"wall_seconds": round(time.perf_counter() - started, 3)},
        }
        return out
