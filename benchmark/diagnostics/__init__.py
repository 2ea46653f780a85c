"""Diagnostics: does a split measure membership at all?

Blind baselines (bag-of-words with logistic regression and naive Bayes, date detection,
greedy character n-grams, length only), all out of fold, over folds drawn by group where
membership is assigned per group (users, authors) and then reported at the text level and at
the group level (``grouped``); the tokenizer baseline of a target (``tokenizer``: what its
tokenizer alone betrays, keyed by tokenizer hash); duplicates, lengths and 13-gram overlap; a
verdict; shift controls; data cards.

Public face: ``diagnose`` (texts + labels [+ groups, tokenizers]), ``diagnose_split``,
``load_labelled`` (any local file), ``write_blind_results`` (result records + diagnostics JSON
for a split), ``save``, ``load_saved``, ``read_saved`` (a split's saved diagnostics, results
folder first), ``best_blind_auc`` (the blind AUC a text or group scorer is compared with),
``control_fields``, ``verdict``, ``BASELINES``, ``BLIND_SCORER``, ``TargetTokenizer``,
``out_of_fold_scores``; cards in ``benchmark.diagnostics.cards``.
"""

from __future__ import annotations

from .baselines import BASELINES
from .blind import bag_of_words, naive_bayes
from .controls import control_fields
from .crossval import out_of_fold_scores
from .files import load_labelled
from .report import diagnose, diagnose_split, load_saved, public, save, write_blind_results
from .saved import best_blind_auc, read_saved
from .tokenizer import TargetTokenizer
from .verdict import RULE as VERDICT_RULE
from .verdict import verdict

BLIND_SCORER = "blind_bow"


__all__ = [
    "BASELINES",
    "BLIND_SCORER",
    "TargetTokenizer",
    "VERDICT_RULE",
    "bag_of_words",
    "best_blind_auc",
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
