"""Threshold calibration of a feature-based scorer: the operating point a practitioner deploys.

``calibrated:base=NAME[:key=value],target_fpr=ALPHA`` wraps any scorer that needs only the
cached features (``loss``, ``zlib``, ``min_k``, ``min_k_plus_plus``, ``dc_pdd``, or a
feature-based scorer registered later). On the calibration subset it scores every text with
the base scorer and chooses the threshold t of the rule "member when base score >= t" with the
largest TPR among those whose FPR on the calibration non-members is at most ``target_fpr``,
and among equal TPRs the lowest FPR (the ROC point a practitioner would deploy). Candidate
thresholds are the calibration scores themselves (distinct candidates never share both
rates), or just above the largest one when not even one member can be admitted. The fitted
transform is

    score(x) = base(x) - t,

a shift, so the ranking (and the AUC) is the base scorer's own, and the deployed rule is
"member when score >= 0". The record reports the operating point chosen on the calibration
subset (t, its calibration TPR and FPR) beside the TPR and FPR it reaches on the evaluated
rest, which the harness measures. Texts the base scorer cannot score (NaN) are left out of
the choice and stay NaN.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import AfterValidator

from ..api import Scorer, ScoringInput
from ..errors import MembenchError
from .registry import scorer_class
from .specs import expand


def choose_threshold(labels: np.ndarray, scores: np.ndarray, target_fpr: float) -> dict:
    """The rule "member when score >= t" with the largest TPR at FPR <= target_fpr on
    (labels, scores) (finite scores only), with its TPR and FPR there."""
    keep = np.isfinite(scores)
    y, s = np.asarray(labels)[keep].astype(int), np.asarray(scores, dtype=float)[keep]
    if len(np.unique(y)) != 2:
        raise MembenchError("threshold calibration needs scored members and non-members in the calibration subset",
                            "use a larger calibration subset")
    best = None
    for t in np.unique(s):  # candidate thresholds: the calibration scores themselves
        member = s >= t
        tpr, fpr = float(member[y == 1].mean()), float(member[y == 0].mean())
        if fpr <= target_fpr and (best is None or (tpr, -fpr) > (best[1], -best[2])):
            best = (float(t), tpr, fpr)
    if best is None:  # no calibration score admits so few false positives: admit nobody seen
        best = (float(np.nextafter(s.max(), np.inf)), 0.0, 0.0)
    return {"threshold": best[0], "tpr": best[1], "fpr": best[2],
            "n_members": int(y.sum()), "n_nonmembers": int((y == 0).sum())}


def _base_setting(base: str) -> tuple[str, dict]:
    spec = base.replace("(", ":", 1).rstrip(")") if "(" in base else base
    try:
        settings = expand(spec)
    except MembenchError as exc:
        raise ValueError(f"base scorer {base!r}: {exc.message}") from None
    if len(settings) != 1:
        raise ValueError(f"base scorer {base!r} names {len(settings)} settings; name one")
    name, params = settings[0]
    if set(scorer_class(name).requires) - {"features"}:
        raise ValueError(f"base scorer {name} needs {', '.join(scorer_class(name).requires)}; threshold calibration "
                         "wraps scorers that need only the cached features")
    return name, params


def _setting_text(name: str, params: dict) -> str:
    return name + (":" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) if params else "")


def _canonical_base(base: str) -> str:
    """A base setting in the canonical form of its own parameters (``min_k:k=0.2`` is ``min_k``)."""
    return _setting_text(*_base_setting(base))


# The `base` parameter as the harness checks it (``specs.canonical_params``): put in canonical form.
BaseSetting = Annotated[str, AfterValidator(_canonical_base)]


class Calibrated(Scorer):
    name = "calibrated"
    title = "Threshold calibration"
    method = "calibrated"
    citation = ""  # membench's own operating-point rule (no paper)
    default_set = "fit"
    requires = ("features", "fit")
    default_calibration = "cal10"

    def __init__(self, base: BaseSetting = "loss", target_fpr: float = 0.05):
        if not 0 <= target_fpr < 1:
            raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
        name, params = _base_setting(base)
        self.base = _setting_text(name, params)
        self.target_fpr = float(target_fpr)
        self.base_scorer = scorer_class(name)(**params)
        self.needs_pool = self.base_scorer.needs_pool
        self.point: dict | None = None

    def _base_scores(self, inputs: ScoringInput) -> np.ndarray:
        self.base_scorer.details = {}
        return np.asarray(self.base_scorer.score(inputs), dtype=float)

    def fit(self, calibration: ScoringInput, labels) -> None:
        self.point = choose_threshold(np.asarray(labels), self._base_scores(calibration), self.target_fpr)
        self.details = {"base": self.base, "base_threshold": self.point["threshold"]}

    def operating_point(self) -> dict | None:
        if self.point is None:
            return None
        return {"threshold": 0.0, "base": self.base, "base_threshold": self.point["threshold"],
                "target_fpr": self.target_fpr,
                "calibration": {k: self.point[k] for k in ("tpr", "fpr", "n_members", "n_nonmembers")}}

    def score(self, inputs: ScoringInput) -> np.ndarray:
        if self.point is None:
            raise MembenchError(f"scorer {self.name} was not fitted", "the harness calls fit() before score()")
        return self._base_scores(inputs) - self.point["threshold"]
