"""Con-ReCall (Wang et al. 2024, "Con-ReCall: Detecting Pre-training Data in LLMs via
Contrastive Decoding"): ReCaLL with a member prefix and a non-member prefix, contrasted.

score(x) = (LL(x | P_non) - gamma * LL(x | P_mem)) / LL(x), where LL(x) = mean_t l_t over the
scored tokens of x (the cached features), and LL(x | P) is the mean over the same tokens when
x follows the prefix P in the context (cut from its left end when P + x exceeds the context).
P_mem (P_non) is the concatenation, blank-line separated, of ``shots`` member (non-member)
texts of the calibration subset drawn with ``seed``. gamma is chosen on the calibration
subset: among 0, 0.1, ..., 1.0 the value with the highest AUC on the calibration texts not used
in a prefix (ties: the smallest), unless ``gamma`` is given. All LLs are negative; with
gamma = 0 it is ReCaLL's ratio (larger = member), and a member prefix raises a member's
likelihood relatively more, so subtracting it keeps larger = member. NaN when x has no scored
token.
"""

from __future__ import annotations

import numpy as np

from ..api import Scorer, ScoringInput, take_rows
from ..errors import MembenchError
from .lowercase import mean_logprob

GAMMAS = tuple(round(0.1 * i, 1) for i in range(11))


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    keep = np.isfinite(scores)
    if len(np.unique(labels[keep])) < 2:
        return float("nan")
    return float(roc_auc_score(labels[keep], scores[keep]))


class ConReCaLL(Scorer):
    name = "con_recall"
    title = "Con-ReCall"
    method = "con_recall"
    citation = "Wang et al. 2024 (arXiv 2409.03363)"
    default_set = "fit"
    requires = ("features", "logprobs", "fit")
    default_calibration = "cal10"

    def __init__(self, shots: int = 2, seed: int = 0, gamma: float | None = None):
        if shots < 1:
            raise ValueError(f"shots must be at least 1, got {shots}")
        if gamma is not None and not np.isfinite(gamma):
            raise ValueError("gamma must be a finite number (or none: chosen on the calibration subset)")
        self.shots = int(shots)
        self.seed = int(seed)
        self.gamma = None if gamma is None else float(gamma)
        self.prefixes: tuple[str, str] | None = None
        self.fitted_gamma: float | None = None

    @staticmethod
    def join(texts) -> str:
        return "\n\n".join(texts) + "\n\n"

    def contrast(self, inputs: ScoringInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(LL(x | P_non), LL(x | P_mem), LL(x)) for every text."""
        p_mem, p_non = self.prefixes
        access = inputs.access
        non = mean_logprob(access.conditional_logprobs(p_non, inputs.texts))
        mem = mean_logprob(access.conditional_logprobs(p_mem, inputs.texts))
        return non, mem, mean_logprob(inputs.features)

    @staticmethod
    def combine(non, mem, alone, gamma: float) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (non - gamma * mem) / alone

    def fit(self, calibration: ScoringInput, labels) -> None:
        y = np.asarray(labels)
        rng = np.random.default_rng(self.seed)
        members, nonmembers = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        if min(len(members), len(nonmembers)) <= self.shots:
            raise MembenchError(f"scorer {self.name} needs more than {self.shots} members and non-members in the "
                                f"calibration subset (it has {len(members)} and {len(nonmembers)})",
                                "use fewer shots or a larger calibration subset")
        pick_mem = rng.choice(members, size=self.shots, replace=False)
        pick_non = rng.choice(nonmembers, size=self.shots, replace=False)
        self.prefixes = (self.join(calibration.texts[int(i)] for i in pick_mem),
                         self.join(calibration.texts[int(i)] for i in pick_non))
        used = set(int(i) for i in pick_mem) | set(int(i) for i in pick_non)
        held = [i for i in range(len(y)) if i not in used]
        non, mem, alone = self.contrast(take_rows(calibration, held))
        aucs = {g: _auc(y[held], self.combine(non, mem, alone, g)) for g in GAMMAS}
        if self.gamma is not None:
            self.fitted_gamma = self.gamma
        else:
            finite = {g: a for g, a in aucs.items() if np.isfinite(a)}
            if not finite:
                raise MembenchError(f"scorer {self.name}: no calibration text left to choose gamma on",
                                    "use a larger calibration subset or fewer shots")
            self.fitted_gamma = max(finite, key=lambda g: (finite[g], -g))
        self.details = {"gamma": self.fitted_gamma, "gamma_chosen_on_calibration": self.gamma is None,
                        "calibration_auc_by_gamma": {str(g): a for g, a in aucs.items()},
                        "prefix_chars": {"member": len(self.prefixes[0]), "nonmember": len(self.prefixes[1])},
                        "calibration_texts_for_gamma": len(held)}

    def score(self, inputs: ScoringInput) -> np.ndarray:
        if self.prefixes is None:
            raise MembenchError(f"scorer {self.name} was not fitted", "the harness calls fit() before score()")
        return self.combine(*self.contrast(inputs), self.fitted_gamma)
