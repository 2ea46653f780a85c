"""CAMIA (Chang et al. 2024, "Context-aware membership inference attacks against pre-trained
large language models", arXiv 2409.13745, EMNLP 2025): membership signals of the per-token loss
trajectory, each turned into a p-value against a non-member population, then combined.

Signals of a text (x_t: log-probability of its t-th scored token, ids: those tokens; x[a:b] in
Python slice notation, so x[0:-1] leaves out the last token; all as the authors' code computes
them, one value per setting in brackets):

- loss[e] = mean x[0:e] and ppl[e] = exp(-loss[e]), e in (-1, 200, 300);
- count_above[h] = fraction of x[0:200] >= h, h in (-1, -2, -3);
- lz_complexity[b]: Lempel-Ziv complexity of x[0:200] binned into b levels, b in (3, 4, 5);
- token_diversity[e] = |distinct ids[0:e]| / len(ids[0:e]);
- count_mean[e] = number of x[0:e] above their mean;
- calibrated_loss[e] = loss[e] / token_diversity[e], calibrated_ppl[e] = ppl[e] / token_diversity[e];
- repetition: the text followed by 5 copies of " " + text is scored whole (x^rep); copy c is
  x^rep[s_c - 1 : s_c - 1 + n - 2] where s_c are the positions where ids[2:] recurs in the
  repeated ids (the last two occurrences dropped, as the authors do), and for every signal above
  but token_diversity, diff1 = signal(copy 0) - signal(copy 1) and diff2 = signal(copy 0) -
  signal(copy 2);
- slope[e]: least-squares slope of x^rep[0:e], approximate_entropy[e] of x^rep[0:e] (m = 8,
  r = 0.8 standard deviations), e in (600, 800, 1000);
- count_above_pre[c] = fraction of t in 1..min(c, n)-1 with x_t > mean x[0:t], c in (inf, 200, 300).

Combination (the authors' "without knowledge" attack, ``run_ours_train_lr.py`` /
``run_ours_different_agg.py``): every signal group is oriented so that lower = member, and each
signal's p-value is the percentile rank (scipy ``percentileofscore``, kind "rank") of the
text's value within the population's values; the score is

    combine="mean" (default, the authors' "Average"/"Agg"): score(x) = -mean_j p_j(x),
    combine="pearson" | "fisher" | "mudholkar_george": score(x) = -combine_pvalues(p, method).pvalue
                                                       (p clipped to [1e-10, 1 - 1e-10], as they do),

higher = member. The population and the orientation need labels: this is a ``fit`` scorer. On
the calibration subset, its non-members are the population (the authors draw 30% of the
non-members; membench's declared subset is ``cal10``, 10% of each class, by default) and each
group is negated when its mean over the calibration members exceeds that over the calibration
non-members. The authors choose that sign from the labels of *all* texts, evaluated ones
included; here only calibration labels are read, so nothing of the evaluated rest leaks.

Reference implementation: github.com/changhongyan123/context_aware_mia (``util_features.py``,
``run_ours_construct_mia_data.py``, ``run_ours_train_lr.py``); the test transcribes its signal
code. Differences: (1) orientation from calibration labels only (above); (2) statistics are the
target's under its context rule: where the repeated text is longer than the context
(truncate-head), fewer copies are found, and a text with fewer than three copies has NaN
repetition signals, which are left out of its combination (NaN signals are left out of a
p-value combination in general; the authors' data had none); (3) ``find_sublist_indices`` gives
up when the pattern runs out instead of looping forever. The learned combinations (logistic
regression, PCA) of the authors' "with knowledge" table are not implemented. Cost: one forward
pass over the six-fold repeated text, for calibration and evaluated texts alike.
"""

from __future__ import annotations

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError

REPEATS = 5
LOSS_ENDS = (-1, 200, 300)
THRESHOLDS = (-1, -2, -3)
LZ_BINS = (3, 4, 5)
LONG_ENDS = (600, 800, 1000)
PRE_CUTS = (1_000_000_000, 200, 300)
AE_M, AE_R = 8, 0.8
COMBINES = ("mean", "pearson", "fisher", "mudholkar_george")


def _mean(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(a.mean()) if len(a) else float("nan")


def lempel_ziv_complexity(x, bins: int) -> float:
    x = np.asarray(x, dtype=np.float64)
    if not len(x):
        return float("nan")
    edges = np.linspace(min(x), 0, 100)
    x = np.digitize(x, bins=edges, right=True)
    levels = np.linspace(np.min(x), np.max(x), bins + 1)[1:]
    sequence = np.searchsorted(levels, x, side="left")
    seen, ind, inc, n = set(), 0, 1, len(sequence)
    while ind + inc <= n:
        sub = tuple(sequence[ind : ind + inc])
        if sub in seen:
            inc += 1
        else:
            seen.add(sub)
            ind += inc
            inc = 1
    return len(seen) / n


def approximate_entropy(x, m: int, r: float) -> float:
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    r = r * np.std(x)
    if n <= m + 1:
        return 0.0

    def phi(k):
        windows = np.array([x[i : i + k] for i in range(n - k + 1)])
        c = np.sum(np.max(np.abs(windows[:, None] - windows[None, :]), axis=2) <= r, axis=0) / (n - k + 1)
        return np.sum(np.log(c)) / (n - k + 1.0)

    return float(np.abs(phi(m) - phi(m + 1)))


def slope(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.polyfit(np.arange(len(x)), x, 1)[0]) if len(x) >= 2 else float("nan")


def trajectory(x, ids) -> dict[str, list[float]]:
    """The signals of one loss trajectory (the authors' ``collect_all_features`` less ``find_t``)."""
    x, ids = np.asarray(x, dtype=np.float64), np.asarray(ids)
    loss = [_mean(x[0:e]) for e in LOSS_ENDS]
    ppl = [float(np.exp(-v)) for v in loss]
    div = [len(set(ids[0:e].tolist())) / len(ids[0:e]) if len(ids[0:e]) else float("nan") for e in LOSS_ENDS]
    return {
        "loss": loss,
        "ppl": ppl,
        "count_above": [_mean(x[0:200] >= h) for h in THRESHOLDS],
        "lz_complexity": [lempel_ziv_complexity(x[0:200], b) for b in LZ_BINS],
        "token_diversity": div,
        "count_mean": [float(np.sum(x[0:e] > x[0:e].mean())) if len(x[0:e]) else float("nan") for e in LOSS_ENDS],
        "calibrated_loss": [a / d for a, d in zip(loss, div)],
        "calibrated_ppl": [a / d for a, d in zip(ppl, div)],
    }


def find_sublist_indices(a, b) -> list[int]:
    """Start positions of ``b`` in ``a``; while at most one is found, ``b`` loses its first item
    and the search repeats, adding to the same list (the authors' function, which would loop
    forever once ``b`` is empty: here it stops)."""
    a, b = np.asarray(a), np.asarray(b)
    indices: list[int] = []
    while len(indices) <= 1 and len(b):
        for i in range(len(a) - len(b) + 1):
            if np.array_equal(a[i : i + len(b)], b):
                indices.append(i)
        b = b[1:]
    return indices


def repeated(text: str, repeats: int = REPEATS) -> str:
    return text + (" " + text) * repeats


def text_signals(x, ids, x_rep, ids_rep) -> dict[str, list[float]]:
    """Every signal group of one text, in the authors' order."""
    single = trajectory(x, ids)
    target = np.asarray(ids)[2:]
    starts = find_sublist_indices(ids_rep, target)[:-2] if len(target) else []
    x_rep = np.asarray(x_rep, dtype=np.float64)
    copies = [trajectory(x_rep[s - 1 : s + len(target) - 1], ids) for s in starts[:3]]
    out: dict[str, list[float]] = {}
    for key, values in single.items():
        out[key] = values
        if key == "token_diversity":
            continue
        for d in (1, 2):
            out[f"overall_diff_{d}_{key}"] = (
                [a - b for a, b in zip(copies[0][key], copies[d][key])] if len(copies) > d else [float("nan")] * len(values))
    out["slope"] = [slope(x_rep[0:e]) for e in LONG_ENDS]
    out["approximate_entropy"] = [approximate_entropy(x_rep[:e], AE_M, AE_R) for e in LONG_ENDS]
    pre = []
    for cut in PRE_CUTS:
        ts = range(1, min(cut, len(x)))
        pre.append(_mean([np.float64(x[t]) > np.mean(x[:t]) for t in ts]) if len(ts) else float("nan"))
    out["count_above_pre"] = pre
    return out


def percentile_rank(population: np.ndarray, values: np.ndarray) -> np.ndarray:
    """scipy.stats.percentileofscore(population, v, kind="rank") / 100 for each v (finite
    population values only; NaN for a NaN value or an empty population)."""
    pop = np.sort(population[np.isfinite(population)])
    out = np.full(len(values), np.nan)
    if not len(pop):
        return out
    ok = np.isfinite(values)
    left = np.searchsorted(pop, values[ok], side="left")
    right = np.searchsorted(pop, values[ok], side="right")
    out[ok] = (left + right + (right > left)) * 50.0 / len(pop) / 100.0
    return out


class CAMIA(Scorer):
    name = "camia"
    title = "CAMIA"
    method = "camia"
    citation = "Chang et al. 2024 (arXiv 2409.13745)"
    default_set = "fit"
    requires = ("features", "logprobs", "fit")
    default_calibration = "cal10"

    def __init__(self, combine: str = "mean", repeats: int = REPEATS):
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {', '.join(COMBINES)}, got {combine!r}")
        if repeats < 3:
            raise ValueError(f"repeats must be at least 3 (two copies are compared with the first), got {repeats}")
        self.combine, self.repeats = combine, int(repeats)
        self.signs: dict[str, float] | None = None
        self.population: np.ndarray | None = None

    def signals(self, inputs: ScoringInput) -> tuple[list[str], np.ndarray]:
        """(column names, [texts x signals]) for the rows of ``inputs``."""
        rep = inputs.access.logprobs([repeated(t, self.repeats) for t in inputs.texts])
        rows, names = [], None
        for i in range(len(inputs.texts)):
            s, r = inputs.features.sample(i), rep.sample(i)
            groups = text_signals(s["logprob"], s["token_id"], r["logprob"], r["token_id"])
            if names is None:
                names = [f"{k}[{j}]" for k, v in groups.items() for j in range(len(v))]
                self._groups = [k for k, v in groups.items() for _ in v]
            rows.append([v for vals in groups.values() for v in vals])
        return names or [], np.asarray(rows, dtype=np.float64).reshape(len(inputs.texts), -1)

    def fit(self, calibration: ScoringInput, labels) -> None:
        y = np.asarray(labels)
        names, values = self.signals(calibration)
        if not (y == 0).any() or not (y == 1).any():
            raise MembenchError("CAMIA needs calibration members and non-members (the population and the signs)",
                                "use a larger calibration subset")
        groups = np.asarray(self._groups)
        self.signs = {}
        with np.errstate(invalid="ignore"):
            for g in dict.fromkeys(self._groups):
                cols = values[:, groups == g]
                member, nonmember = np.nanmean(cols[y == 1]), np.nanmean(cols[y == 0])
                self.signs[g] = -1.0 if member > nonmember else 1.0
        self.sign_vector = np.asarray([self.signs[g] for g in self._groups])
        self.population = values[y == 0] * self.sign_vector
        self.details = {"signals": len(names), "population": int((y == 0).sum()),
                        "negated_groups": sorted(g for g, s in self.signs.items() if s < 0), "combine": self.combine}

    def score(self, inputs: ScoringInput) -> np.ndarray:
        if self.population is None:
            raise MembenchError(f"scorer {self.name} was not fitted", "the harness calls fit() before score()")
        _, values = self.signals(inputs)
        values = values * self.sign_vector
        p = np.stack([percentile_rank(self.population[:, j], values[:, j]) for j in range(values.shape[1])], axis=1)
        return combine_pvalues(p, self.combine)


def combine_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Per row of p-values [texts x signals], the combined score (higher = member), NaN p-values
    left out; NaN where a row has none."""
    from scipy.stats import combine_pvalues as scipy_combine

    out = np.full(p.shape[0], np.nan)
    for i, row in enumerate(p):
        row = row[np.isfinite(row)]
        if not len(row):
            continue
        if method == "mean":
            out[i] = -row.mean()
        else:
            out[i] = -scipy_combine(np.clip(row, 1e-10, 1 - 1e-10), method=method).pvalue
    return out
