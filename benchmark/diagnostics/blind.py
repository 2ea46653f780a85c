"""Blind baselines over words: bag-of-words classifiers that never see the model.

- ``blind_bow``: TF-IDF over word 1-2 grams (sublinear tf, min_df 2) with logistic regression.
- ``blind_nb``: word counts (1-grams, min_df 2) with multinomial naive Bayes.

Every sample's score is out of fold (see ``crossval.out_of_fold_scores``): the vectorizer and
the classifier are fit on the other folds only. Higher = member. scikit-learn is imported
when a model is made, never on import (``membench --help`` and the readers of saved
diagnostics do not pay for it).
"""

from __future__ import annotations


def bag_of_words():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(C=1.0, max_iter=2000),
    )


def naive_bayes():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    return make_pipeline(CountVectorizer(min_df=2), MultinomialNB(alpha=1.0))


__all__ = ["bag_of_words", "naive_bayes"]
