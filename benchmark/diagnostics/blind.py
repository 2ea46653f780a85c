"""Blind baselines: membership classifiers that never see the model.

Bag-of-words: TF-IDF over word 1-2 grams with logistic regression. Every sample's score is
out of fold: stratified k-fold cross-validation fits the vectorizer and the classifier on the
other folds only, so no sample is scored by a model that saw it. Higher = member.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

N_FOLDS = 5
SEED = 0


def bag_of_words():
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(C=1.0, max_iter=2000),
    )


def out_of_fold_scores(texts, labels, make_model=bag_of_words, *, folds=N_FOLDS, seed=SEED):
    """P(member) for every sample from a model fit on the other folds (never on itself)."""
    labels = np.asarray(labels).astype(int)
    n_splits = min(folds, int(np.bincount(labels, minlength=2).min()))
    if n_splits < 2:
        raise ValueError("cross-validation needs at least two samples of each class")
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    proba = cross_val_predict(make_model(), list(texts), labels, cv=cv, method="predict_proba")
    return proba[:, 1]
