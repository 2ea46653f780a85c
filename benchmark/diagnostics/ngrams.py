"""Greedy character n-gram selection (after Das et al. 2024, "blind baselines").

On the training folds only: count, for every character n-gram (lengths 5-7 by default, kept
when it occurs in at least ``min_df`` training texts), the share of member and of non-member
texts that contain it (document frequency, Laplace-smoothed). Then, for each class in turn,
greedily pick the n-gram that covers the most not-yet-covered texts of that class among
those at least ``min_ratio`` times more frequent there than in the other class, until
``max_ngrams`` are chosen or no candidate covers ``min_df`` new texts. A text's score is the
summed log frequency ratio of the member-side n-grams it contains minus that of the
non-member side, squashed to (0, 1). A marker string present in one class is found at once.
Scoring needs only the selected n-grams, so it is a plain substring test per n-gram. On
large splits the selection uses a seeded, class-stratified sample of at most
``max_train_texts`` training texts, which bounds the memory of the n-gram vocabulary.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer


class GreedyNgramClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, ngram_range=(5, 7), min_df: int = 3, min_ratio: float = 3.0,
                 max_ngrams: int = 50, max_features: int = 200_000, max_train_texts: int = 3000,
                 seed: int = 0):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.min_ratio = min_ratio
        self.max_ngrams = max_ngrams
        self.max_features = max_features
        self.max_train_texts = max_train_texts
        self.seed = seed

    def _greedy(self, X_side, log_ratio):
        """Indices of greedily chosen columns for one class (X_side: that class's rows)."""
        eligible = log_ratio >= np.log(self.min_ratio)
        uncovered = np.ones(X_side.shape[0])
        X_t = X_side.T.tocsr()  # n-grams x texts: one row per candidate
        chosen = []
        for _ in range(self.max_ngrams):
            gain = np.asarray(X_t @ uncovered).ravel()
            gain[~eligible] = -1
            best = int(np.argmax(gain + 1e-6 * log_ratio))  # ties: higher ratio first
            if gain[best] < self.min_df:
                break
            chosen.append(best)
            eligible[best] = False
            uncovered[X_t[best].indices] = 0
        return np.array(chosen, dtype=int)

    def fit(self, texts, labels):
        labels = np.asarray(labels).astype(int)
        self.classes_ = np.array([0, 1])
        if len(labels) > self.max_train_texts:
            rng = np.random.default_rng(self.seed)
            share = self.max_train_texts / len(labels)
            keep = np.sort(np.concatenate([
                rng.choice(np.flatnonzero(labels == c), max(1, int(share * (labels == c).sum())), replace=False)
                for c in (0, 1)
            ]))
            texts, labels = [texts[i] for i in keep], labels[keep]
        self.vectorizer_ = CountVectorizer(
            analyzer="char", ngram_range=tuple(self.ngram_range), min_df=self.min_df,
            binary=True, lowercase=False, max_features=self.max_features, dtype=np.float32,
        )
        try:
            X = self.vectorizer_.fit_transform(texts).tocsr()
        except ValueError:  # no n-gram reaches min_df: nothing to select
            self.ngrams_, self.weights_ = [], np.zeros(0)
            self.selected_ = {"member": [], "nonmember": []}
            return self
        pos, neg = labels == 1, labels == 0
        df_pos = (np.asarray(X[pos].sum(0)).ravel() + 1) / (pos.sum() + 2)
        df_neg = (np.asarray(X[neg].sum(0)).ravel() + 1) / (neg.sum() + 2)
        log_ratio = np.log(df_pos / df_neg)
        member_side = self._greedy(X[pos], log_ratio)
        nonmember_side = self._greedy(X[neg], -log_ratio)
        names = self.vectorizer_.get_feature_names_out()
        chosen = np.concatenate([member_side, nonmember_side])
        self.ngrams_ = [str(names[i]) for i in chosen]
        self.weights_ = log_ratio[chosen]
        self.selected_ = {"member": [str(names[i]) for i in member_side],
                          "nonmember": [str(names[i]) for i in nonmember_side]}
        del self.vectorizer_  # the vocabulary is large and no longer needed
        return self

    def predict_proba(self, texts):
        z = np.array([sum(w for g, w in zip(self.ngrams_, self.weights_) if g in t) for t in texts],
                     dtype=float)
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])
