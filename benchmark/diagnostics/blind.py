"""Blind baselines over words: bag-of-words classifiers that never see the model.

- ``blind_bow``: TF-IDF over word 1-2 grams (sublinear tf, min_df 2) with logistic regression.
- ``blind_nb``: word counts (1-grams, min_df 2) with multinomial naive Bayes.

Every sample's score is out of fold (see ``crossval.out_of_fold_scores``): the vectorizer and
the classifier are fit on the other folds only. Higher = member.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline


def bag_of_words():
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(C=1.0, max_iter=2000),
    )


def naive_bayes():
    return make_pipeline(CountVectorizer(min_df=2), MultinomialNB(alpha=1.0))


__all__ = ["bag_of_words", "naive_bayes"]
