"""Diagnostics: does a split measure membership at all?

Blind baselines (bag-of-words with logistic regression and naive Bayes, date detection,
greedy character n-grams, length only), all out of fold; duplicates, lengths and 13-gram
overlap; a verdict; shift controls; data cards.

Public face: ``diagnose`` (texts + labels), ``diagnose_split``, ``load_labelled`` (any local
file), ``write_blind_results`` (result records + diagnostics JSON for a split), ``save``,
``load_saved``, ``read_saved`` (a split's saved diagnostics, results folder first), ``control_fields``, ``verdict``, ``BASELINES``, ``BLIND_SCORER``,
``out_of_fold_scores``; cards in ``benchmark.diagnostics.cards``.
"""

from __future__ import annotations

from .baselines import BASELINES
from .blind import bag_of_words, naive_bayes
from .controls import control_fields
from .crossval import out_of_fold_scores
from .files import load_labelled
from .report import diagnose, diagnose_split, load_saved, public, save, write_blind_results
from .saved import read_saved
from .verdict import RULE as VERDICT_RULE
from .verdict import verdict

BLIND_SCORER = "blind_bow"


__all__ = [
    "BASELINES",
    "BLIND_SCORER",
    "VERDICT_RULE",
    "bag_of_words",
    "control_fields",
    "diagnose",
    "diagnose_split",
    "load_labelled",
    "load_saved",
    "naive_bayes",
    "out_of_fold_scores",
    "public",
    "read_saved",
    "save",
    "verdict",
    "write_blind_results",
]
