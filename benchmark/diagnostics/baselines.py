"""The blind baselines, by scorer name. Each is an unfitted scikit-learn classifier over texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .blind import bag_of_words, naive_bayes
from .dates import YearCutoffClassifier
from .length import LengthClassifier
from .ngrams import GreedyNgramClassifier


@dataclass(frozen=True)
class Baseline:
    name: str
    make: Callable
    module: str  # the file holding its code (hashed into result provenance)
    description: str


BASELINES = {
    b.name: b
    for b in (
        Baseline("blind_bow", bag_of_words, "blind",
                 "TF-IDF word 1-2 grams + logistic regression"),
        Baseline("blind_nb", naive_bayes, "blind", "word counts + multinomial naive Bayes"),
        Baseline("blind_date", YearCutoffClassifier, "dates",
                 "largest four-digit year against a cutoff swept on the training folds"),
        Baseline("blind_ngram", GreedyNgramClassifier, "ngrams",
                 "greedy character 5-7-gram selection by member/non-member document-frequency ratio"),
        Baseline("blind_length", LengthClassifier, "length",
                 "logistic regression on the log word count"),
    )
}
