"""Out-of-fold scoring: no sample is ever scored by a model that was fit on it.

Stratified k-fold cross-validation (shuffled, fixed seed) partitions the samples; each fold
is scored by a fresh clone of the model fit on the other folds only. Every sample therefore
gets exactly one score, from a model that never saw it or its label. Exact duplicate texts
must be removed before this (the diagnostics do), or a copy in a training fold would leak.

The folds depend on the content, never on the order rows arrive in: rows are put in content
order first (the text's uid, the same hash a materialized split is sorted by, then the text
and the label), the seeded split is drawn in that order, and every model is fit and scored
on its rows in that order. The same texts therefore get the same out-of-fold scores whether
they come from a materialized split, a file, or the same file shuffled.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from ..suite import make_uid

N_FOLDS = 5
SEED = 0


def content_order(texts, labels) -> np.ndarray:
    """Row positions sorted by content: uid (hash of the text), then text, then label."""
    labels = np.asarray(labels).astype(int)
    keys = [(make_uid(t), t, int(y)) for t, y in zip(texts, labels)]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=int)


def folds(texts, labels, *, n_folds: int = N_FOLDS, seed: int = SEED):
    """(train, test) position pairs of a seeded stratified k-fold drawn in content order.

    Positions index the rows as given; within each pair they are listed in content order.
    """
    labels = np.asarray(labels).astype(int)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    n_splits = min(n_folds, int(np.bincount(labels, minlength=2).min()))
    if n_splits < 2:
        raise ValueError("cross-validation needs at least two samples of each class")
    order = content_order(texts, labels)
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(order[train], order[test]) for train, test in cv.split(np.zeros(len(order)), labels[order])]


def out_of_fold_scores(texts, labels, make_model, *, folds_=None, n_folds=N_FOLDS, seed=SEED):
    """P(member) for every sample from a model fit on the other folds (never on itself).

    ``make_model`` returns an unfitted scikit-learn classifier over a list of texts (for
    example ``BASELINES["blind_bow"].make``). ``folds_`` (from ``folds``) lets several models
    share one partition. Higher = member.
    """
    texts = np.asarray(list(texts), dtype=object)
    labels = np.asarray(labels).astype(int)
    scores = np.full(len(labels), np.nan)
    template = make_model()
    for train, test in folds_ if folds_ is not None else folds(texts, labels, n_folds=n_folds, seed=seed):
        model = clone(template).fit(list(texts[train]), labels[train])
        member_col = list(model.classes_).index(1)
        scores[test] = model.predict_proba(list(texts[test]))[:, member_col]
    if np.isnan(scores).any():  # the folds are a partition: this would be a bug, say so loudly
        raise AssertionError("some samples received no out-of-fold score")
    return scores
