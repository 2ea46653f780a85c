"""Out-of-fold scoring: no sample is ever scored by a model that was fit on it.

Stratified k-fold cross-validation (shuffled, fixed seed) partitions the samples; each fold
is scored by a fresh clone of the model fit on the other folds only. Every sample therefore
gets exactly one score, from a model that never saw it or its label. Exact duplicate texts
must be removed before this (the diagnostics do), or a copy in a training fold would leak.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

N_FOLDS = 5
SEED = 0


def folds(labels, *, n_folds: int = N_FOLDS, seed: int = SEED):
    """(train, test) index pairs of a seeded stratified k-fold over ``labels``."""
    labels = np.asarray(labels).astype(int)
    n_splits = min(n_folds, int(np.bincount(labels, minlength=2).min()))
    if n_splits < 2:
        raise ValueError("cross-validation needs at least two samples of each class")
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(labels)), labels))


def out_of_fold_scores(texts, labels, make_model=None, *, folds_=None, n_folds=N_FOLDS, seed=SEED):
    """P(member) for every sample from a model fit on the other folds (never on itself).

    ``make_model`` returns an unfitted scikit-learn classifier over a list of texts (default:
    the TF-IDF bag-of-words model). Higher = member.
    """
    if make_model is None:
        from .blind import bag_of_words as make_model
    texts = np.asarray(list(texts), dtype=object)
    labels = np.asarray(labels).astype(int)
    scores = np.full(len(labels), np.nan)
    template = make_model()
    for train, test in folds_ if folds_ is not None else folds(labels, n_folds=n_folds, seed=seed):
        model = clone(template).fit(list(texts[train]), labels[train])
        member_col = list(model.classes_).index(1)
        scores[test] = model.predict_proba(list(texts[test]))[:, member_col]
    if np.isnan(scores).any():  # the folds are a partition: this would be a bug, say so loudly
        raise AssertionError("some samples received no out-of-fold score")
    return scores
