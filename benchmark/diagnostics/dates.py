"""Date detection: the largest four-digit year in a text against a cutoff.

Post-hoc MIA sets take members from before a model's training cutoff and non-members from
after it (WikiMIA: events before 2017 against events from 2023 on), so the years a text
mentions can give its label away without any model.

The classifier puts every text in one of three buckets: largest year <= cutoff, largest year
> cutoff, or no year at all. On the training folds it sweeps every candidate cutoff (each
distinct year seen there), keeps the one whose bucket scores separate the training labels
best (training AUC; ties go to the earliest year), and scores a text by its bucket's member
rate in the training folds (Laplace-smoothed). Both orientations are learned, never assumed.
"""

from __future__ import annotations

import re

import numpy as np

YEAR = re.compile(r"(?<![\d])(1[0-9]{3}|20[0-9]{2})(?![\d])")
NO_YEAR = -1


def largest_year(text: str) -> int:
    """The largest four-digit year (1000-2099) written in ``text``; -1 when there is none."""
    years = [int(y) for y in YEAR.findall(text)]
    return max(years) if years else NO_YEAR


def _bucket(years: np.ndarray, cutoff: int) -> np.ndarray:
    return np.where(years == NO_YEAR, 2, np.where(years <= cutoff, 0, 1))


class YearCutoffClassifier:
    """The classifier above (``fit`` / ``predict_proba`` / ``classes_``, as scikit-learn's)."""

    def __init__(self, smoothing: float = 1.0):
        self.smoothing = smoothing

    def _rates(self, buckets, labels):
        a = self.smoothing
        return np.array(
            [(labels[buckets == b].sum() + a) / ((buckets == b).sum() + 2 * a) for b in range(3)]
        )

    def fit(self, texts, labels):
        from sklearn.metrics import roc_auc_score

        labels = np.asarray(labels).astype(int)
        years = np.array([largest_year(t) for t in texts])
        self.classes_ = np.array([0, 1])
        candidates = np.unique(years[years != NO_YEAR])
        best = (-1.0, None)
        for cutoff in candidates:
            buckets = _bucket(years, int(cutoff))
            score = self._rates(buckets, labels)[buckets]
            fit_auc = roc_auc_score(labels, score) if len(np.unique(score)) > 1 else 0.5
            if fit_auc > best[0] + 1e-12:
                best = (fit_auc, int(cutoff))
        self.cutoff_ = best[1] if best[1] is not None else 0
        self.rates_ = self._rates(_bucket(years, self.cutoff_), labels)
        return self

    def predict_proba(self, texts):
        years = np.array([largest_year(t) for t in texts])
        p = self.rates_[_bucket(years, self.cutoff_)]
        return np.column_stack([1 - p, p])
